"""Actors that keep the house in order."""

from __future__ import annotations

import os

import dramatiq
from piccolo.engine import engine_finder

from actors.broker import broker

# Redis key written by `ping_worker`: baton:worker-ping:{token} -> "pid rows", 60 s TTL.
PING_KEY = "baton:worker-ping:{token}"
PING_TTL_S = 60


@dramatiq.actor(queue_name="maintenance", max_retries=3, time_limit=10_000)
async def ping_worker(token: str) -> None:
    """Proves a worker is whole: its asyncio loop, its Postgres pool and Redis.

    Answers by writing ``PING_KEY`` so the sender (a test, or ``baton dev``) can
    wait for it.
    """
    engine = engine_finder()
    assert engine is not None
    rows = await engine.run_ddl("SELECT 1 AS one")
    broker.client.set(PING_KEY.format(token=token), f"{os.getpid()} {rows[0]['one']}", ex=PING_TTL_S)
