"""Each worker process's tier loop: asleep until the next tier or SLA falls due.

After each pass it asks Postgres when the soonest open tier or SLA is due and sleeps
until then, but never longer than ``POLL_INTERVAL_S`` (hand-offs created meanwhile have
their tier 0 fired by their own ``fire_due_tiers`` job; a later tier is at least a
second away, so the loop's second finds it in time) and never shorter than
``MIN_SLEEP_S`` (a due row locked by another process's engine must not make it spin).
No job per tick: the loop runs beside the actors on the worker's asyncio loop, as the
outbox relay does (actors/outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from actors.broker import PiccoloPool, broker
from actors.loop_middleware import BackgroundLoop
from actors.tiers.clock import clock
from actors.tiers.engine import fire_due
from tables import db
from tables.queries import tiers

log = logging.getLogger("baton.tiers")

POLL_INTERVAL_S = 1.0
MIN_SLEEP_S = 0.05
ERROR_BACKOFF_MAX_S = 30.0


def sleep_s(next_due_at: Any, now: Any) -> float:
    if next_due_at is None:
        return POLL_INTERVAL_S
    return min(POLL_INTERVAL_S, max(MIN_SLEEP_S, (next_due_at - now).total_seconds()))


async def tiers_forever(stop: asyncio.Event) -> None:
    # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await _run(stop, stopping)
    finally:
        stopping.cancel()


async def _run(stop: asyncio.Event, stopping: asyncio.Future[Any]) -> None:
    failures = 0
    while not stop.is_set():
        wait_s = POLL_INTERVAL_S
        if db.pool_running():
            try:
                await fire_due(clock.now())
                wait_s = sleep_s(await tiers.next_due_at(), clock.now())
                failures = 0
            except Exception:
                failures += 1
                wait_s = min(POLL_INTERVAL_S * 2**failures, ERROR_BACKOFF_MAX_S)
                log.exception("tier engine pass failed (%d in a row); next in %.0f s", failures, wait_s)
        await asyncio.wait({stopping}, timeout=wait_s)


# Before PiccoloPool, as the outbox relay: it starts after the pool opens, stops before it closes.
broker.add_middleware(BackgroundLoop("tier engine", tiers_forever), before=PiccoloPool)
