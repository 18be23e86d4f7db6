"""A real `baton worker` runs async actors on its own loop with its own Postgres pool,
and a message held by a SIGKILLed worker comes back on another one."""

from __future__ import annotations

import uuid

import redis

from tests.conftest import BatonProcesses, wait_for


def _ping_keys(token: str) -> tuple[str, str]:
    from actors.maintenance import PING_KEY, PING_STARTED_KEY

    return PING_STARTED_KEY.format(token=token), PING_KEY.format(token=token)


def test_a_worker_runs_an_async_actor_that_queries_postgres(baton: BatonProcesses, redis_url: str) -> None:
    from actors.maintenance import ping_worker

    worker = baton.worker()
    token = uuid.uuid4().hex
    ping_worker.send(token)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    _, answered = _ping_keys(token)
    wait_for(lambda: client.get(answered) is not None, 30, f"the worker to answer:\n{worker.log()}")
    pid, one = client.get(answered).split()
    assert one == "1"
    assert int(pid) != worker.process.pid  # answered by Dramatiq's worker process, not the parent


def test_a_message_held_by_a_killed_worker_is_redelivered_to_another(
    baton: BatonProcesses, redis_url: str
) -> None:
    from actors.maintenance import ping_worker

    # Short heartbeat and frequent maintenance, so the test takes seconds; the
    # production values (30 s, 5 %) give the same within about a minute.
    fast = {
        "BATON_WORKER_HEARTBEAT_TIMEOUT_MS": "2000",
        "BATON_WORKER_MAINTENANCE_CHANCE_PER_MILLION": "500000",
    }
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    token = uuid.uuid4().hex
    started, answered = _ping_keys(token)

    first = baton.worker(env=fast)
    ping_worker.send(token, hold_s=60)
    wait_for(lambda: client.get(started) is not None, 30, f"the first worker to take it:\n{first.log()}")
    first_pid = int(client.get(started))
    # SIGKILL the whole first pool: the parent and the process holding the message.
    import os
    import signal

    os.kill(first_pid, signal.SIGKILL)
    first.kill()

    second = baton.worker(env=fast)
    wait_for(
        lambda: client.get(started) not in (None, str(first_pid)),
        45,
        f"the message to come back on the second worker:\n{second.log()}",
    )
    assert client.get(answered) is None  # the second worker is holding it again, 60 s
    second.kill()  # rather than wait out its graceful stop on a message held for a minute
