"""The Dramatiq broker: Redis from settings, async actors, a Piccolo pool per worker.

Importing this module installs the broker globally (``dramatiq.set_broker``), which
is what ``dramatiq actors`` and ``actor.send()`` in the web process both expect.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import dramatiq
import redis
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, CurrentMessage, Middleware

from actors.delay_rescue import DelayedMessageRescue
from actors.message_context import MessageLogContext
from settings import Settings, get_settings
from tables.pool import POOL_OPTIONS

log = logging.getLogger("baton.worker")

# Dramatiq's Redis keys live under this prefix: baton:<queue>, baton:<queue>.msgs,
# baton:__heartbeats__, … (owned by dramatiq.brokers.redis).
NAMESPACE = "baton"
# Without these a blackholed Redis would hang a sender (the web process at commit, the
# outbox relay) for as long as TCP keeps trying. Dramatiq's commands never block in Redis.
REDIS_CONNECT_TIMEOUT_S = 2.0
REDIS_SOCKET_TIMEOUT_S = 10.0


class PiccoloPool(Middleware):
    """Starts the Piccolo connection pool on the worker's asyncio loop.

    A Piccolo pool is bound to the loop that opened it, and async actors run on the
    loop thread that the AsyncIO middleware starts in ``before_worker_boot``; so
    the pool starts after boot, on that loop. A failure stops the worker rather
    than leaving it to fail every message.
    """

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from piccolo.engine import engine_finder

        engine: Any = engine_finder()
        loop_thread = get_event_loop_thread()
        if engine is None or loop_thread is None:
            raise RuntimeError("no Piccolo engine or no asyncio loop: is the AsyncIO middleware on?")
        loop_thread.run_coroutine(engine.start_connection_pool(max_size=10, **POOL_OPTIONS))
        log.info("worker pid %s: Postgres pool started", os.getpid())

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from piccolo.engine import engine_finder

        engine: Any = engine_finder()
        loop_thread = get_event_loop_thread()
        if engine is not None and loop_thread is not None:
            loop_thread.run_coroutine(engine.close_connection_pool())


def build_broker(settings: Settings) -> RedisBroker:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: start Baton through `baton` or set it")
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
    )
    broker = RedisBroker(
        client=client,
        namespace=NAMESPACE,
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
        maintenance_chance=settings.worker_maintenance_chance_per_million,
    )
    broker.add_middleware(AsyncIO())
    broker.add_middleware(PiccoloPool())
    broker.add_middleware(MessageLogContext())
    # The message in hand, for log lines that say which try of how many failed.
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DelayedMessageRescue())
    if os.environ.get("dramatiq_prom_port"):  # noqa: SIM112 (Dramatiq's own variable)
        # Set by `baton worker` from BATON_WORKER_METRICS_PORT (cli/worker_metrics.py);
        # never in a web process, which imports the broker only to send.
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())
    return broker


broker = build_broker(get_settings())
dramatiq.set_broker(broker)
