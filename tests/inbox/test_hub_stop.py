"""``Hub.stop()`` ends the hub's loop, and returns within its bound whatever Redis does.

A web replica's shutdown waits on it: a stop that never returns is a replica that never
exits (a rolling deploy waits on it) and a test that waits out pytest's timeout.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from pathlib import Path

import pytest

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from inbox import Hub, SubscriberDropped
from inbox.hub import STOP_TIMEOUT_S

from .conftest import HUB_CONNECT_TIMEOUT_S

pytestmark = pytest.mark.asyncio

STOP_ROUNDS = 20
# A hub PINGing this often spends most of its time in redis-py's send of PING, where
# (before the fix) the cancel of 17 stops in 20 was lost and the loop ran on.
BUSY_PING_INTERVAL_S = 0.0005
WAIT_LONGER_THAN_THE_BOUND_S = STOP_TIMEOUT_S + 2.0


def hub_loops_running() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "inbox-hub" and not t.done()]


async def test_stop_ends_the_hub_loop_even_when_its_cancel_lands_in_a_redis_write(redis_url: str) -> None:
    stuck: list[str] = []
    for round_no in range(STOP_ROUNDS):
        hub = Hub(redis_url, ping_interval_s=BUSY_PING_INTERVAL_S, pong_timeout_s=30.0)
        await hub.start()
        await asyncio.wait_for(hub.connected.wait(), HUB_CONNECT_TIMEOUT_S)
        # Not waiting for anything: a random moment of the ping loop for the stop to land in.
        await asyncio.sleep(random.uniform(0, 0.02))
        stopping = asyncio.ensure_future(hub.stop())
        await asyncio.wait({stopping}, timeout=WAIT_LONGER_THAN_THE_BOUND_S)
        if not stopping.done() or hub_loops_running():
            stuck.append(f"round {round_no}: stop {'returned' if stopping.done() else 'hung'}")
            for loop_task in hub_loops_running():  # so the next round starts clean
                for _ in range(50):
                    loop_task.cancel()
                    await asyncio.wait({loop_task}, timeout=0.1)
            await asyncio.wait({stopping}, timeout=1.0)
    assert stuck == [], f"{len(stuck)} of {STOP_ROUNDS} stops left the hub's loop running: {stuck}"


async def test_stop_returns_within_its_bound_while_redis_is_stopped(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), durable=False)
    server.start()
    assert server.process is not None
    try:
        hub = Hub(server.url, ping_interval_s=0.2, pong_timeout_s=0.5, command_timeout_s=30.0)
        await hub.start()
        await asyncio.wait_for(hub.connected.wait(), HUB_CONNECT_TIMEOUT_S)
        socket = await hub.subscribe(str(uuid.uuid4()))
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            # Redis is silent: the hub gives the subscription up and reconnects into a
            # server whose kernel still accepts connections that nobody answers.
            await asyncio.wait_for(hub.disconnected.wait(), HUB_CONNECT_TIMEOUT_S)
            started = time.monotonic()
            await hub.stop()
            took_s = time.monotonic() - started
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert took_s < STOP_TIMEOUT_S + 0.5, f"stop took {took_s:.1f} s with Redis stopped"
        assert hub_loops_running() == []
        with pytest.raises(SubscriberDropped):
            await anext(aiter(socket))
    finally:
        server.stop()
