"""The outbox's statements (``tables.delivery.Outbox``): the jobs a change writes in its
own transaction (``write_change_jobs``), the relay's locks and marks, the sweep's re-sends,
and the jobs the workers write themselves.

The web writes a change's jobs on its click path, in one raw statement for all of them
(tables/queries/__init__.py says why raw); the commit NOTIFYs the workers' relays
(tables/delivery.py), which read them back. The workers' side is the query builder. The
locks (``lock_*``) must run inside ``tables.db.transaction()``: they hold the rows until
it ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions import Count

from tables import db
from tables.delivery import ANNOUNCE_EVENTS, Outbox
from tables.queries.clock import now, seconds_ago
from tables.queries.insert_parts import parts


class OutboxJob(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    actor_name: str
    payload: dict[str, Any]
    created_at: datetime


class UnknownActorRows(msgspec.Struct, frozen=True, kw_only=True):
    actor_name: str
    n: int


class ResentJob(msgspec.Struct, frozen=True, kw_only=True):
    actor_name: str
    handoff_id: str | None


class NewJob(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    actor_name: str
    payload: dict[str, Any]


_JOB_COLUMNS = (Outbox.id, Outbox.actor_name, Outbox.payload, Outbox.created_at)


def _any_id(ids: list[uuid.UUID]) -> WhereRaw:
    # One array parameter: ``is_in`` would send a parameter per id (200 in a batch) and
    # Piccolo warns past 100.
    return WhereRaw('"id" = ANY({}::uuid[])', ids)


def _jobs(rows: list[dict[str, Any]]) -> list[OutboxJob]:
    return [OutboxJob(**{**row, "payload": row["payload"] or {}}) for row in rows]


async def lock_unsent_jobs(*, actor_names: list[str], limit: int) -> list[OutboxJob]:
    """Up to ``limit`` unsent jobs of ``actor_names`` (never announcements), oldest first,
    locked ``FOR UPDATE SKIP LOCKED``: any number of relays at once, none sending a row
    another holds."""
    if not actor_names:
        return []
    rows = await db.run(
        Outbox.select(*_JOB_COLUMNS)
        .where(
            Outbox.sent_at.is_null(),
            Outbox.actor_name.is_in(actor_names),
            Outbox.actor_name != ANNOUNCE_EVENTS,
        )
        .order_by(Outbox.created_at)
        .limit(limit)
        .lock_rows(skip_locked=True)
        .output(load_json=True)
    )
    return _jobs(rows)


async def lock_unsent_announcements(*, limit: int) -> list[OutboxJob]:
    """Up to ``limit`` unsent announcements in commit order, locked ``FOR UPDATE``.

    No SKIP LOCKED: they are published in commit order, so this waits for a lock another
    relay holds (that relay publishes the earlier ones first), and once it commits,
    Postgres re-checks ``sent_at IS NULL`` and leaves out what it sent."""
    rows = await db.run(
        Outbox.select(*_JOB_COLUMNS)
        .where(Outbox.sent_at.is_null(), Outbox.actor_name == ANNOUNCE_EVENTS)
        .order_by(Outbox.created_at, Outbox.id)
        .limit(limit)
        .lock_rows()
        .output(load_json=True)
    )
    return _jobs(rows)


async def mark_sent(*, ids: list[uuid.UUID]) -> None:
    if ids:
        await db.run(
            Outbox.update({Outbox.sent_at: now(), Outbox.attempts: Outbox.attempts + 1}).where(_any_id(ids))
        )


async def count_attempt(*, ids: list[uuid.UUID]) -> None:
    if ids:
        await db.run(Outbox.update({Outbox.attempts: Outbox.attempts + 1}).where(_any_id(ids)))


async def mark_done(*, outbox_id: uuid.UUID) -> None:
    """The job's message succeeded (or a retry of it did)."""
    await db.run(
        Outbox.update({Outbox.done_at: now()}).where(Outbox.id == outbox_id, Outbox.done_at.is_null())
    )


async def prune_sent(*, older_than_s: float) -> int:
    """How many rows sent more than ``older_than_s`` ago were deleted now."""
    rows = await db.run(
        Outbox.delete().where(Outbox.sent_at < seconds_ago(older_than_s)).returning(Outbox.id)
    )
    return len(rows)


async def unsent_of_unknown_actors(*, known: list[str]) -> list[UnknownActorRows]:
    """How many unsent rows name an actor outside ``known``, per actor name."""
    query = Outbox.select(Outbox.actor_name, Count(alias="n")).where(Outbox.sent_at.is_null())
    if known:
        query = query.where(Outbox.actor_name.not_in(known))
    rows = await db.run(query.group_by(Outbox.actor_name))
    return msgspec.convert(rows, list[UnknownActorRows])


async def resend_undone(
    *,
    stuck_after_s: float,
    window_s: float,
    sends_max: int,
    delays_s: Mapping[str, float],
) -> list[ResentJob]:
    """Jobs sent more than ``stuck_after_s`` ago and never done, made unsent again for the
    relay: created within ``window_s``, sent fewer than ``sends_max`` times, never an
    announcement (the relay publishes those itself, done at once), and for a delayed job
    (``delays_s``: actor name → seconds) only once it is overdue by as long."""
    query = Outbox.update({Outbox.sent_at: None}).where(
        Outbox.sent_at.is_not_null(),
        Outbox.done_at.is_null(),
        Outbox.sent_at < seconds_ago(stuck_after_s),
        Outbox.created_at > seconds_ago(window_s),
        Outbox.attempts < sends_max,
        Outbox.actor_name != ANNOUNCE_EVENTS,
    )
    for actor_name, delay_s in delays_s.items():
        query = query.where(
            (Outbox.actor_name != actor_name) | (Outbox.created_at <= seconds_ago(stuck_after_s + delay_s))
        )
    rows = await db.run(query.returning(Outbox.actor_name, Outbox.payload))
    resent = []
    for row in rows:
        payload = db.load_json(row["payload"]) or {}
        resent.append(ResentJob(actor_name=row["actor_name"], handoff_id=payload.get("handoff_id")))
    return resent


async def write_jobs(*, jobs: list[NewJob]) -> None:
    """New outbox rows; their commit NOTIFYs the relays (the table's trigger)."""
    for part in parts(jobs):
        await db.run(
            Outbox.insert(
                *(
                    Outbox(
                        account_id=job.account_id,
                        actor_name=job.actor_name,
                        payload=job.payload,
                        attempts=0,
                        created_at=now(),
                    )
                    for job in part
                )
            )
        )


# ------------------------------------------------------------ the web's click path

INSERT_JOBS = """
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
SELECT job.id, $1, job.actor_name, job.payload::jsonb, 0, $2
FROM unnest($3::uuid[], $4::text[], $5::text[]) AS job(id, actor_name, payload)
"""


class ChangeJob(msgspec.Struct, frozen=True, kw_only=True):
    actor_name: str
    payload: str  # JSON
    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)


async def write_change_jobs(
    conn: asyncpg.Connection, *, account_id: uuid.UUID, jobs: Sequence[ChangeJob], now: datetime
) -> None:
    if not jobs:
        return
    await conn.execute(
        INSERT_JOBS,
        account_id,
        now,
        [job.id for job in jobs],
        [job.actor_name for job in jobs],
        [job.payload for job in jobs],
    )
