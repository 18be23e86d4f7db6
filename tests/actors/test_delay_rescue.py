"""A delayed message a worker held when Redis restarted still runs (actors/delay_rescue.py).

Dramatiq 2.2 forgets the delayed messages a consumer holds in memory when its connection
breaks, while they stay in that live worker's ack set: without the rescue, this test's
message would wait for the worker to die.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from tests.conftest import BatonProcesses, wait_for

DELAY_MS = 12_000
# Dramatiq's ConsumerThread logs this, and forgets the delayed messages it holds, once
# redis-py has given up reconnecting: Redis stays down until the worker says so.
CONSUMER_LOST_REDIS = "ConsumerThread(maintenance.DQ): Consumer encountered a connection error"
NAMESPACE = "baton"  # actors.broker.NAMESPACE (importing it would build the broker here)


def test_a_delayed_message_held_across_a_redis_restart_still_runs(
    baton: BatonProcesses, tmp_path: Path
) -> None:
    from actors.maintenance import PING_KEY

    own_redis = EmbeddedRedis(tmp_path / "redis", free_port(), durable=True)
    own_redis.start()
    try:
        worker = baton.worker(env={"REDIS_URL": own_redis.url})
        sender = RedisBroker(url=own_redis.url, namespace=NAMESPACE)
        token = uuid.uuid4().hex
        sender.enqueue(
            dramatiq.Message(
                queue_name="maintenance", actor_name="ping_worker", args=(token,), kwargs={}, options={}
            ),
            delay=DELAY_MS,
        )
        client = redis.Redis.from_url(own_redis.url)

        def held_by_the_worker() -> bool:
            ack_sets = client.scan_iter(f"{NAMESPACE}:__acks__.*.maintenance.DQ")
            return any(client.scard(key) for key in ack_sets)

        wait_for(held_by_the_worker, 30, f"the worker to take the delayed message:\n{worker.log()}")
        client.close()
        own_redis.stop()
        wait_for(
            lambda: CONSUMER_LOST_REDIS in worker.log(),
            30,
            "the worker's delay-queue consumer to lose Redis",
        )
        own_redis.start()

        client = redis.Redis.from_url(own_redis.url)
        wait_for(
            lambda: client.get(PING_KEY.format(token=token)) is not None,
            40,
            f"the delayed message to run after the restart:\n{worker.log()[-4000:]}",
        )
        assert "put back 1 delayed message(s) on maintenance.DQ" in worker.log()
        assert worker.process.poll() is None  # the same worker: nothing had to die for it
        client.close()
        sender.close()
    finally:
        own_redis.stop()
