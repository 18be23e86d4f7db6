"""Redis on the request path: every call bounded, so a stalled Redis never holds a request.

SPEC "Stalls". A write makes at most two Redis calls (the rate limit, then the publish
after commit), each given ``REQUEST_REDIS_TIMEOUT_S``: a Redis that stops answering
(SIGSTOPped, swapping, a network that drops packets) costs a create or a claim about a
second in all, and then the rate limit fails open and the events go out through the
outbox (actors/announce.py). Without this a create waited as long as the stall (15 s
of SIGSTOP: 15.02 s), redis-py retrying its 5 s socket timeout ten times.

The client's socket timeouts bound each read and write; ``redis_deadline`` bounds a
whole call (waiting for a connection, connecting, the health-check PING, the reply),
which the per-step timeouts alone would let add up. A timed-out call is not retried:
it would only wait again. A connection found dead (Redis restarted) is retried once,
within the same deadline.

Cost: on Python 3.11 redis-py wraps each command's I/O in ``asyncio.wait_for`` when a
socket timeout is set (a task each, ~15 µs here; docs/architecture.md), and the
deadline adds one timer per call (~10 µs measured on this shared 2-core machine; two per
write, next to ~1.7 ms of server CPU for a create).
"""

from __future__ import annotations

import asyncio

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

REQUEST_REDIS_TIMEOUT_S = 0.5
HEALTH_CHECK_INTERVAL_S = 10
# What a bounded call raises when Redis is down, slow or stalled.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def request_redis_client(url: str) -> redis.asyncio.Redis:
    """The web process's client for the request path (rate limits, publishing, /ready)."""
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=REQUEST_REDIS_TIMEOUT_S,
        socket_connect_timeout=REQUEST_REDIS_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


def redis_deadline() -> asyncio.Timeout:
    """``async with redis_deadline(): await …``: TimeoutError once the call has taken
    ``REQUEST_REDIS_TIMEOUT_S``."""
    return asyncio.timeout(REQUEST_REDIS_TIMEOUT_S)
