"""The outbox relay: jobs written in a change's transaction reach Dramatiq, even late.

Two ways out for a row of ``outbox``:

- ``hand_over(ids)``: the web process, right after its commit, sends the new rows and
  marks them sent. Redis down, or the process dying between commit and send, leaves
  them unsent; the click path does not wait or fail for it.
- ``OutboxRelay``: a loop in every worker process sends every row still unsent
  ``BATON_OUTBOX_RESEND_AFTER_S`` after it was written, and deletes rows sent more than
  ``KEEP_SENT_S`` ago.

Rows are taken with ``FOR UPDATE SKIP LOCKED``, so any number of web and worker
processes can relay at once without sending a row twice while another holds it. A crash
between the send and the ``sent_at`` update sends it again later: delivery is
at-least-once, and every actor is idempotent.

Some jobs are delayed (``JOB_DELAYS_S``): the reminder is sent to arrive
``BATON_REMIND_AFTER_S`` after the row was written, however late the relay is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from actors import db
from actors.broker import PiccoloPool, broker
from settings import Settings, get_settings

log = logging.getLogger("baton.outbox")

RELAY_INTERVAL_S = 1.0
RELAY_BATCH_ROWS = 200
KEEP_SENT_S = 24 * 3600
PRUNE_INTERVAL_S = 600.0
ERROR_BACKOFF_MAX_S = 30.0
POOL_WAIT_POLL_S = 0.1

# Seconds after the row's creation at which the job should run.
JOB_DELAYS_S: dict[str, Callable[[Settings], float]] = {
    "remind_handoff": lambda settings: float(settings.remind_after_s),
}

LOCK_BY_ID = """
SELECT id, actor_name, payload, created_at FROM outbox
WHERE id = ANY($1::uuid[]) AND sent_at IS NULL
ORDER BY created_at
FOR UPDATE SKIP LOCKED
"""

LOCK_DUE = """
SELECT id, actor_name, payload, created_at FROM outbox
WHERE sent_at IS NULL AND created_at < now() - make_interval(secs => $1)
  AND actor_name = ANY($2::text[])
ORDER BY created_at
LIMIT $3
FOR UPDATE SKIP LOCKED
"""

MARK_SENT = """
UPDATE outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY($1::uuid[])
"""

COUNT_ATTEMPT = "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::uuid[])"

PRUNE = "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)"

UNKNOWN_ACTORS = """
SELECT actor_name, count(*) AS n FROM outbox
WHERE sent_at IS NULL AND NOT (actor_name = ANY($1::text[]))
GROUP BY actor_name
"""


def known_actors() -> list[str]:
    return sorted(broker.get_declared_actors())


def _delay_ms(row: Any, now: datetime, settings: Settings) -> int | None:
    delay = JOB_DELAYS_S.get(row["actor_name"])
    if delay is None:
        return None
    due_in_s = delay(settings) - (now - row["created_at"]).total_seconds()
    return max(int(due_in_s * 1000), 0) or None


def _enqueue(rows: Sequence[Any], settings: Settings) -> tuple[list[uuid.UUID], str | None]:
    """Send each row's message; (ids sent, the error that stopped the rest, if any).

    Blocking Redis calls: run in a thread. The first connection error stops the batch,
    since Redis is down for the rest of it too.
    """
    sent: list[uuid.UUID] = []
    now = datetime.now(UTC)
    for row in rows:
        try:
            actor = broker.get_actor(row["actor_name"])
        except dramatiq.errors.ActorNotFound:
            log.error("outbox row %s names no actor %r; left unsent", row["id"], row["actor_name"])
            continue
        payload = db.load_json(row["payload"]) or {}
        try:
            actor.send_with_options(kwargs=payload, delay=_delay_ms(row, now, settings))
        except (redis.RedisError, OSError) as exc:
            return sent, f"{type(exc).__name__}: {exc}"
        sent.append(row["id"])
    return sent, None


async def _relay(rows_sql: str, *args: Any) -> int:
    settings = get_settings()
    async with db.transaction() as conn:
        rows = await conn.fetch(rows_sql, *args)
        if not rows:
            return 0
        sent, error = await asyncio.to_thread(_enqueue, rows, settings)
        if sent:
            await conn.execute(MARK_SENT, sent)
        done = set(sent)
        unsent = [row["id"] for row in rows if row["id"] not in done]
        if unsent:
            await conn.execute(COUNT_ATTEMPT, unsent)
    if error:
        log.warning("outbox: %d job(s) left for the relay, Redis refused: %s", len(rows) - len(sent), error)
    return len(sent)


async def hand_over(outbox_ids: Sequence[uuid.UUID]) -> int:
    """After a commit: send these rows now. Never raises; returns how many were sent."""
    if not outbox_ids:
        return 0
    try:
        return await _relay(LOCK_BY_ID, list(outbox_ids))
    except Exception:
        log.exception("outbox: hand-over failed; the relay will send the jobs")
        return 0


async def relay_due(settings: Settings | None = None) -> int:
    """One pass of the relay: rows unsent for ``outbox_resend_after_s``."""
    settings = settings or get_settings()
    return await _relay(LOCK_DUE, settings.outbox_resend_after_s, known_actors(), RELAY_BATCH_ROWS)


async def prune() -> int:
    status = await db.execute(PRUNE, float(KEEP_SENT_S))
    return int(status.split()[-1]) if status.startswith("DELETE") else 0


async def relay_forever(stop: asyncio.Event) -> None:
    """The worker's loop: relay, now and then prune; log and back off on any error."""
    next_prune = 0.0
    failures = 0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        if not db.pool_running():
            # Not yet (or no longer) open: nothing to relay through.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=POOL_WAIT_POLL_S)
            continue
        try:
            sent = await relay_due()
            while sent == RELAY_BATCH_ROWS and not stop.is_set():
                sent = await relay_due()
            if loop.time() >= next_prune:
                pruned = await prune()
                if pruned:
                    log.info("outbox: pruned %d sent row(s)", pruned)
                unknown = await db.fetch(UNKNOWN_ACTORS, known_actors())
                for row in unknown:
                    log.error("outbox: %d unsent row(s) for unknown actor %r", row["n"], row["actor_name"])
                next_prune = loop.time() + PRUNE_INTERVAL_S
            failures = 0
            wait_s = RELAY_INTERVAL_S
        except Exception:
            failures += 1
            wait_s = min(RELAY_INTERVAL_S * 2**failures, ERROR_BACKOFF_MAX_S)
            log.exception("outbox relay pass failed (%d in a row); next in %.0f s", failures, wait_s)
        # Jitter, so the relays of many workers do not fire in step.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait_s * random.uniform(0.8, 1.2))


class OutboxRelay(Middleware):
    """Runs ``relay_forever`` on each worker process's asyncio loop, beside the actors."""

    def __init__(self) -> None:
        self._stop: asyncio.Event | None = None
        self._task: Any = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("the outbox relay needs the AsyncIO middleware")

        async def start() -> None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(relay_forever(self._stop))

        loop_thread.run_coroutine(start())
        log.info("worker pid %s: outbox relay started", os.getpid())

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None or self._stop is None:
            return
        stop, task = self._stop, self._task

        async def halt() -> None:
            stop.set()
            await task

        loop_thread.run_coroutine(halt())


# Before PiccoloPool in the list: Dramatiq runs after_worker_boot hooks last-first (the
# pool opens, then the relay starts) and before_worker_shutdown first-first (the relay
# stops, then the pool closes).
broker.add_middleware(OutboxRelay(), before=PiccoloPool)
