"""The outbox relay: jobs written in a change's transaction reach Dramatiq, even late.

Every insert into ``outbox`` NOTIFYs ``OUTBOX_NOTIFY_CHANNEL`` when its transaction
commits (a trigger; tables/delivery.py). Each worker process runs ``relay_forever``: it
LISTENs on its own connection, and on every notification, and at the latest every
``BATON_OUTBOX_SWEEP_INTERVAL_S``, sends all unsent rows to Dramatiq and marks them
sent; now and then it deletes rows sent more than ``KEEP_SENT_S`` ago. The web never
talks to the broker on the click path: its commit is the hand-over.

Rows are taken with ``FOR UPDATE SKIP LOCKED``, so any number of relays can run at once
without sending a row twice while another holds it. Redis down: the batch stops at the
first refusal, the rows stay unsent (``attempts`` counts the tries) and the next pass
sends them. A crash between the send and the ``sent_at`` update sends it again later:
delivery is at-least-once, and every actor is idempotent. A lost LISTEN connection is
reopened with backoff; meanwhile the sweep alone carries the rows, a second late.

Some jobs are delayed (``actors/job_delays.py``): the reminder is sent to arrive
``BATON_REMIND_AFTER_S`` after the row was written, however late the relay is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import dramatiq
import redis
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from actors.announce import publish_announcement
from actors.broker import PiccoloPool, broker
from actors.delivery_sweep import sweep_interval_s, sweep_lost_work
from actors.job_delays import JOB_DELAYS_S
from actors.loop_middleware import BackgroundLoop
from settings import Settings, get_settings
from tables import db
from tables.delivery import OUTBOX_NOTIFY_CHANNEL
from tables.queries import outbox as jobs
from tables.queries.outbox import OutboxJob

log = logging.getLogger("baton.outbox")

RELAY_INTERVAL_S = 1.0  # the base of the backoff after a failed pass or LISTEN
LISTEN_CONNECT_TIMEOUT_S = 10.0
RELAY_BATCH_ROWS = 200
KEEP_SENT_S = 24 * 3600
PRUNE_INTERVAL_S = 600.0
ERROR_BACKOFF_MAX_S = 30.0
POOL_WAIT_POLL_S = 0.1


def known_actors() -> list[str]:
    return sorted(broker.get_declared_actors())


def _delay_ms(row: OutboxJob, now: datetime, settings: Settings) -> int | None:
    delay = JOB_DELAYS_S.get(row.actor_name)
    if delay is None:
        return None
    due_in_s = delay(settings) - (now - row.created_at).total_seconds()
    return max(int(due_in_s * 1000), 0) or None


def _enqueue(rows: Sequence[OutboxJob], settings: Settings) -> tuple[list[uuid.UUID], str | None]:
    """Send each row's message; (ids sent, the error that stopped the rest, if any).

    Blocking Redis calls: run in a thread. The first connection error stops the batch,
    since Redis is down for the rest of it too.
    """
    sent: list[uuid.UUID] = []
    now = datetime.now(UTC)
    for row in rows:
        try:
            actor = broker.get_actor(row.actor_name)
        except dramatiq.errors.ActorNotFound:
            log.error("outbox row %s names no actor %r; left unsent", row.id, row.actor_name)
            continue
        try:
            options: dict[str, Any] = {OUTBOX_ID_OPTION: str(row.id)}
            actor.send_with_options(kwargs=row.payload, delay=_delay_ms(row, now, settings), **options)
        except (redis.RedisError, OSError) as exc:
            return sent, f"{type(exc).__name__}: {exc}"
        sent.append(row.id)
    return sent, None


async def _publish_announcements(rows: Sequence[OutboxJob]) -> tuple[list[uuid.UUID], str | None]:
    """Publish each row's events, in order; (ids done, the error that stopped the rest)."""
    sent: list[uuid.UUID] = []
    for row in rows:
        payload = row.payload
        try:
            await publish_announcement(payload["account_id"], payload["announcement_id"], payload["events"])
        except (redis.RedisError, OSError) as exc:
            return sent, f"{type(exc).__name__}: {exc}"
        sent.append(row.id)
    return sent, None


async def _enqueue_jobs(rows: Sequence[OutboxJob]) -> tuple[list[uuid.UUID], str | None]:
    return await asyncio.to_thread(_enqueue, rows, get_settings())


SendRows = Callable[[Sequence[OutboxJob]], Awaitable[tuple[list[uuid.UUID], str | None]]]


async def _relay(send: SendRows, lock_rows: Callable[[], Awaitable[list[OutboxJob]]]) -> int:
    """Lock rows, ``send`` them, mark what went; all in one transaction."""
    async with db.transaction():
        rows = await lock_rows()
        if not rows:
            return 0
        sent, error = await send(rows)
        await jobs.mark_sent(ids=sent)
        done = set(sent)
        await jobs.count_attempt(ids=[row.id for row in rows if row.id not in done])
    if error:
        log.warning(
            "outbox: %d job(s) left unsent, Redis refused: %s; the next pass tries again",
            len(rows) - len(sent),
            error,
        )
    return len(sent)


async def relay_unsent() -> int:
    """One pass of the relay over the unsent rows (at most ``RELAY_BATCH_ROWS`` of jobs,
    and as many announcements)."""
    announced = await _relay(
        _publish_announcements, lambda: jobs.lock_unsent_announcements(limit=RELAY_BATCH_ROWS)
    )
    relayed = await _relay(
        _enqueue_jobs, lambda: jobs.lock_unsent_jobs(actor_names=known_actors(), limit=RELAY_BATCH_ROWS)
    )
    return max(relayed, announced)


async def prune() -> int:
    return await jobs.prune_sent(older_than_s=float(KEEP_SENT_S))


class OutboxListener:
    """A LISTEN connection of its own (a pooled one would lose it on release) that sets
    ``wake`` on every notification; reopened by ``ensure`` after it drops."""

    def __init__(self, wake: asyncio.Event) -> None:
        self._wake = wake
        self._conn: asyncpg.Connection | None = None
        self._retry_at = 0.0
        self._failures = 0

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def ensure(self, database_url: str) -> None:
        """Open the connection if it is not; on failure, log and try again later."""
        if self._conn is not None and not self._conn.is_closed():
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return
        try:
            conn = await asyncpg.connect(database_url, timeout=LISTEN_CONNECT_TIMEOUT_S)
            await conn.add_listener(OUTBOX_NOTIFY_CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self._failures += 1
            wait_s = min(RELAY_INTERVAL_S * 2**self._failures, ERROR_BACKOFF_MAX_S)
            self._retry_at = loop.time() + wait_s
            log.warning("outbox: cannot LISTEN (%s); sweeping only, next try in %.0f s", exc, wait_s)
            return
        if self._failures:
            log.info("outbox: listening again after %d failed tries", self._failures)
        self._conn, self._failures = conn, 0
        # Whatever was notified while we were not listening is unsent still: look now.
        self._wake.set()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=LISTEN_CONNECT_TIMEOUT_S)
            self._conn = None


async def relay_forever(stop: asyncio.Event) -> None:
    """The worker's loop: relay when notified (or every sweep interval), now and then
    prune; log and back off on any error."""
    settings = get_settings()
    wake = asyncio.Event()
    listener = OutboxListener(wake)
    stopping = asyncio.ensure_future(stop.wait())
    next_prune = next_sweep = 0.0
    failures = 0
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            if not db.pool_running():
                # Not yet (or no longer) open: nothing to relay through.
                await _wait_for(stopping, None, POOL_WAIT_POLL_S)
                continue
            await listener.ensure(settings.database_url or "")
            # Cleared before the pass: a notification during it brings another pass.
            wake.clear()
            try:
                sent = await relay_unsent()
                while sent == RELAY_BATCH_ROWS and not stop.is_set():
                    sent = await relay_unsent()
                if loop.time() >= next_prune:
                    await _prune_and_report()
                    next_prune = loop.time() + PRUNE_INTERVAL_S
                if loop.time() >= next_sweep:
                    await sweep_lost_work()
                    next_sweep = loop.time() + sweep_interval_s()
                failures = 0
                wait_s = settings.outbox_sweep_interval_s
            except Exception:
                failures += 1
                wait_s = min(RELAY_INTERVAL_S * 2**failures, ERROR_BACKOFF_MAX_S)
                log.exception("outbox relay pass failed (%d in a row); next in %.0f s", failures, wait_s)
                wake.clear()  # a notification must not cut the backoff short
            # Jitter, so the sweeps of many workers do not fire in step.
            await _wait_for(stopping, wake, wait_s * random.uniform(0.8, 1.2))
    finally:
        stopping.cancel()
        await listener.close()


async def _wait_for(stopping: asyncio.Future[Any], wake: asyncio.Event | None, timeout_s: float) -> None:
    """Until ``stopping`` is done, ``wake`` is set, or ``timeout_s`` has passed."""
    waiters: set[asyncio.Future[Any]] = {stopping}
    woken = asyncio.ensure_future(wake.wait()) if wake is not None else None
    if woken is not None:
        waiters.add(woken)
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if woken is not None:
            woken.cancel()


async def _prune_and_report() -> None:
    pruned = await prune()
    if pruned:
        log.info("outbox: pruned %d sent row(s)", pruned)
    for unknown in await jobs.unsent_of_unknown_actors(known=known_actors()):
        log.error("outbox: %d unsent row(s) for unknown actor %r", unknown.n, unknown.actor_name)


OUTBOX_ID_OPTION = "baton_outbox_id"  # message option: the outbox row a message carries


class OutboxJobDone(Middleware):
    """Marks a job's outbox row done once its message (or a retry of it, which keeps the
    option) has succeeded. A job sent and never done was lost in the broker: the sweep
    (actors/delivery_sweep.py) sends it again."""

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        outbox_id = message.options.get(OUTBOX_ID_OPTION)
        loop_thread = get_event_loop_thread()
        if exception is not None or not outbox_id or loop_thread is None:
            return
        try:
            loop_thread.run_coroutine(jobs.mark_done(outbox_id=uuid.UUID(str(outbox_id))))
        except Exception:  # the job is done; at worst the sweep runs it (idempotent) again
            log.exception("outbox: could not mark job %s done", outbox_id)


# Before PiccoloPool in the list: Dramatiq runs after_worker_boot hooks last-first (the
# pool opens, then the relay starts) and before_worker_shutdown first-first (the relay
# stops, then the pool closes).
broker.add_middleware(BackgroundLoop("outbox relay", relay_forever), before=PiccoloPool)
broker.add_middleware(OutboxJobDone())
