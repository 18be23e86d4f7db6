"""Actors that keep the house in order."""

from __future__ import annotations

import asyncio
import os

import dramatiq
from piccolo.engine import engine_finder

from actors.broker import broker

# Redis keys written by `ping_worker`, each kept PING_TTL_S:
#   baton:worker-ping:{token}:started  -> pid of the worker that took the message
#   baton:worker-ping:{token}          -> "pid rows" once it has answered
PING_KEY = "baton:worker-ping:{token}"
PING_STARTED_KEY = "baton:worker-ping:{token}:started"
PING_TTL_S = 120
PING_HOLD_MAX_S = 60.0


@dramatiq.actor(queue_name="maintenance", max_retries=3, time_limit=90_000)
async def ping_worker(token: str, hold_s: float = 0.0) -> None:
    """Proves a worker is whole: its asyncio loop, its Postgres pool and Redis.

    Answers by writing ``PING_KEY`` so the sender can wait for it. ``hold_s`` keeps
    the message in hand for a while first, so a test can kill the worker mid-job
    and watch the message come back on another one.
    """
    broker.client.set(PING_STARTED_KEY.format(token=token), os.getpid(), ex=PING_TTL_S)
    if hold_s > 0:
        await asyncio.sleep(min(hold_s, PING_HOLD_MAX_S))
    engine = engine_finder()
    assert engine is not None
    rows = await engine.run_ddl("SELECT 1 AS one")
    broker.client.set(PING_KEY.format(token=token), f"{os.getpid()} {rows[0]['one']}", ex=PING_TTL_S)
