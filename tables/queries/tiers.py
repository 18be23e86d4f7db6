"""The tier engine's statements (actors/tiers/): the due hand-offs, locked; the people
and channels a tier may reach; the schedule moved on; the ledger rows; the SLA breaches.

Off the click path, so the builder throughout. Every instant is the engine's clock
(``actors/tiers/clock.py``), passed in, never ``now()``: a test drives it, and the
schedule it compares with was computed from the same instants (tables/tier_schedule.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions import Lower

from tables import db
from tables.accounts import User
from tables.delivery import AppNotification, Delivery
from tables.handoffs import SessionHandoff
from tables.integrations import NotificationChannel
from tables.queries.deliveries import SENT_AT_BIRTH_PREFIX, LedgerKey, NewLedgerRow
from tables.queries.insert_parts import parts
from tables.sessions import AiSession

h = SessionHandoff


class DueHandoff(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    account_id: uuid.UUID
    session_id: uuid.UUID
    team_id: uuid.UUID | None
    handed_off_by: uuid.UUID
    target_user_id: uuid.UUID | None
    priority: str
    policy: Any  # JSON text of tables.policy_shapes.PolicyCopy
    release_count: int
    tier_next: int
    tier_round: int
    tier_due_at: datetime


async def lock_due(*, now: datetime, limit: int) -> list[DueHandoff]:
    """Open hand-offs whose next tier is due by ``now``, soonest first, locked; rows
    another engine holds are skipped (it is firing them). On the current transaction."""
    rows = await db.run(
        h.select(
            h.id,
            h.account_id,
            h.session_id,
            h.team_id,
            h.handed_off_by,
            h.target_user_id,
            h.priority,
            h.policy,
            h.release_count,
            h.tier_next,
            h.tier_round,
            h.tier_due_at,
        )
        .where(h.state == "open", h.tier_next.is_not_null(), h.tier_due_at <= now)
        .order_by(h.tier_due_at)
        .limit(limit)
        .lock_rows(skip_locked=True)
    )
    return msgspec.convert(rows, list[DueHandoff])


async def next_due_at() -> datetime | None:
    """When the soonest tier or SLA of an open hand-off falls due (the engine sleeps until then)."""
    tier = await db.run(
        h.select(h.tier_due_at)
        .where(h.state == "open", h.tier_next.is_not_null(), h.tier_due_at.is_not_null())
        .order_by(h.tier_due_at)
        .first()
    )
    sla = await db.run(
        h.select(h.claim_due_at)
        .where(h.state == "open", h.breached_at.is_null(), h.claim_due_at.is_not_null())
        .order_by(h.claim_due_at)
        .first()
    )
    found = [row[key] for row, key in ((tier, "tier_due_at"), (sla, "claim_due_at")) if row]
    return min(found) if found else None


async def is_due(*, handoff_id: uuid.UUID, now: datetime) -> bool:
    """Whether this open hand-off has a tier due by ``now`` (not locked: a hint, the pass decides)."""
    rows = await db.run(
        h.select(h.id).where(
            h.id == handoff_id, h.state == "open", h.tier_next.is_not_null(), h.tier_due_at <= now
        )
    )
    return bool(rows)


class Person(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    email: str
    account_role: str
    team_id: uuid.UUID | None


async def eligible_people(*, account_ids: list[uuid.UUID]) -> list[Person]:
    """Every eligible user (active, not deleted) of these accounts."""
    rows = await db.run(
        User.select(
            User.id,
            User.account_id,
            User.name,
            Lower(User.email, alias="email"),
            User.account_role,
            User.team_id,
        ).where(
            WhereRaw('"account_id" = ANY({}::uuid[])', account_ids),
            User.is_active.eq(True),
            User.deleted_at.is_null(),
        )
    )
    return msgspec.convert(rows, list[Person])


class ChatChannel(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    account_id: uuid.UUID
    kind: str


async def enabled_chat_channels(*, account_ids: list[uuid.UUID]) -> list[ChatChannel]:
    c = NotificationChannel
    rows = await db.run(
        c.select(c.id, c.account_id, c.kind).where(
            WhereRaw('"account_id" = ANY({}::uuid[])', account_ids), c.enabled.eq(True)
        )
    )
    return msgspec.convert(rows, list[ChatChannel])


class SessionTitle(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    problem_summary: str | None
    psa_ticket_id: str | None


async def session_titles(*, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, SessionTitle]:
    s = AiSession
    rows = await db.run(
        s.select(s.id, s.problem_summary, s.psa_ticket_id).where(
            WhereRaw('"id" = ANY({}::uuid[])', session_ids)
        )
    )
    return {row.id: row for row in msgspec.convert(rows, list[SessionTitle])}


class Move(msgspec.Struct, frozen=True, kw_only=True):
    """One fired tier: the row as the engine locked it (release count, tier, round) and
    what follows it."""

    handoff_id: uuid.UUID
    release_count: int
    tier: int
    round: int
    last_tier: dict[str, Any]
    next_tier: int | None
    next_round: int
    next_due_at: datetime | None
    priority: str


# One statement for the whole batch, not one per hand-off: the batch's transaction holds
# its rows locked, and on the worker's shared event loop every statement waits its turn
# behind the actors' coroutines (bench/tiers.py: 200 UPDATEs made a batch's commit
# seconds late under load). Raw, for the UPDATE ... FROM unnest Piccolo cannot say.
MOVE_ON = """
UPDATE session_handoffs AS h
SET last_tier = m.last_tier::jsonb, tier_next = m.next_tier, tier_round = m.next_round,
    tier_due_at = m.next_due_at, priority = m.priority, updated_at = {}
FROM unnest({}::uuid[], {}::int[], {}::int[], {}::int[], {}::text[], {}::int[], {}::int[],
            {}::timestamptz[], {}::text[])
     AS m(id, release_count, tier, round, last_tier, next_tier, next_round, next_due_at, priority)
WHERE h.id = m.id AND h.release_count = m.release_count AND h.tier_next = m.tier AND h.tier_round = m.round
RETURNING h.id
"""


async def move_on(*, moves: list[Move], now: datetime) -> int:
    """Each fired tier recorded and the next one scheduled, where the row is still at the
    tier its move names (release count, tier, round); how many were. On the current
    transaction."""
    moved = 0
    for part in parts(moves):
        rows = await db.run(
            h.raw(
                MOVE_ON,
                now,
                [move.handoff_id for move in part],
                [move.release_count for move in part],
                [move.tier for move in part],
                [move.round for move in part],
                [db.dump_json(move.last_tier) for move in part],
                [move.next_tier for move in part],
                [move.next_round for move in part],
                [move.next_due_at for move in part],
                [move.priority for move in part],
            )
        )
        moved += len(rows)
    return moved


class Breach(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    account_id: uuid.UUID
    session_id: uuid.UUID
    priority: str
    claim_due_at: datetime


async def breach_due(*, now: datetime, limit: int) -> list[Breach]:
    """``breached_at := claim_due_at`` on open hand-offs past it, once (never again:
    the condition is ``breached_at IS NULL``); the ones this call breached."""
    due = (
        h.select(h.id)
        .where(h.state == "open", h.breached_at.is_null(), h.claim_due_at <= now)
        .order_by(h.claim_due_at)
        .limit(limit)
        .lock_rows(skip_locked=True)
    )
    ids = [row["id"] for row in await db.run(due)]
    if not ids:
        return []
    rows = await db.run(
        h.update({h.breached_at: h.claim_due_at, h.updated_at: now}, use_auto_update=False)
        .where(WhereRaw('"id" = ANY({}::uuid[])', ids), h.breached_at.is_null())
        .returning(h.id, h.account_id, h.session_id, h.priority, h.claim_due_at)
    )
    return msgspec.convert(rows, list[Breach])


class NewBell(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    handoff_id: uuid.UUID
    session_id: uuid.UUID


# A later tier (or round) rings a bell the user already has for this hand-off: it rings
# again, unread at the top, rather than adding a second row (the bell keeps one per
# hand-off, user and kind: app_notifications_one_per_handoff_user_kind). Raw: Piccolo's
# ON CONFLICT cannot name a partial unique index's predicate, which Postgres needs to
# infer it.
RING_BELLS = """
INSERT INTO app_notifications (id, account_id, user_id, kind, title, body, link, handoff_id, session_id,
                               read_at, created_at)
SELECT gen_random_uuid(), bell.account_id, bell.user_id, bell.kind, bell.title, bell.body, NULL,
       bell.handoff_id, bell.session_id, NULL, {}
FROM unnest({}::uuid[], {}::uuid[], {}::text[], {}::text[], {}::text[], {}::uuid[], {}::uuid[])
     AS bell(account_id, user_id, kind, title, body, handoff_id, session_id)
ON CONFLICT (handoff_id, user_id, kind) WHERE handoff_id IS NOT NULL
DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, created_at = EXCLUDED.created_at, read_at = NULL
"""


async def ring_bells(*, bells: list[NewBell], now: datetime) -> None:
    """The bell rows of a batch of tiers. On the current transaction."""
    for part in parts(bells):
        # Through Piccolo's raw: it runs on the caller's transaction (a pool connection of
        # its own would wait on the hand-off rows that transaction holds locked).
        await db.run(
            AppNotification.raw(
                RING_BELLS,
                now,
                [bell.account_id for bell in part],
                [bell.user_id for bell in part],
                [bell.kind for bell in part],
                [bell.title for bell in part],
                [bell.body for bell in part],
                [bell.handoff_id for bell in part],
                [bell.session_id for bell in part],
            )
        )


# The ledger rows of a batch of tiers in a few statements (a part of ROWS_PER_INSERT rows
# each), the ones missing only. Raw over unnest: Piccolo's insert builds an object and
# a parameter per column of every row, which was two thirds of the engine's CPU for a
# batch ringing 15 seniors (bench/tiers.py); this sends one array per column. A ``bell:``
# row is the record of the bell rung in the same transaction: sent at birth.
INSERT_LEDGER_ROWS = """
INSERT INTO deliveries (id, account_id, handoff_id, channel, recipient, purpose, release_count, tier, round,
                        status, attempts, sent_at, created_at, updated_at)
SELECT gen_random_uuid(), r.account_id, r.handoff_id, r.channel, r.recipient, r.purpose, r.release_count,
       r.tier, r.round, CASE WHEN r.sent THEN 'sent' ELSE 'pending' END, CASE WHEN r.sent THEN 1 ELSE 0 END,
       CASE WHEN r.sent THEN now() END, now(), now()
FROM unnest({}::uuid[], {}::uuid[], {}::text[], {}::text[], {}::text[], {}::int[], {}::int[], {}::int[],
            {}::bool[])
     AS r(account_id, handoff_id, channel, recipient, purpose, release_count, tier, round, sent)
ON CONFLICT (handoff_id, purpose, release_count, tier, round, channel, recipient) DO NOTHING
"""


async def insert_ledger_rows(rows: list[NewLedgerRow]) -> None:
    """Rows of many hand-offs and keys at once. On the current transaction."""
    for part in parts(rows):
        await db.run(
            Delivery.raw(
                INSERT_LEDGER_ROWS,
                [row.account_id for row in part],
                [row.handoff_id for row in part],
                [row.channel for row in part],
                [row.recipient for row in part],
                [row.key.purpose for row in part],
                [row.key.release_count for row in part],
                [row.key.tier for row in part],
                [row.key.round for row in part],
                [row.recipient.startswith(SENT_AT_BIRTH_PREFIX) for row in part],
            )
        )


class UnsentChatRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    channel: str
    recipient: str  # the notification channel's id


async def unsent_chat_rows(
    *, handoff_id: uuid.UUID, key: LedgerKey, kinds: tuple[str, ...]
) -> list[UnsentChatRow]:
    """A tier's chat posts still ``pending`` or ``sending``, by kind then channel: one
    query for every kind, each row with its recipient."""
    d = Delivery
    rows = await db.run(
        d.select(d.id, d.channel, d.recipient)
        .where(
            d.handoff_id == handoff_id,
            key.where(),
            d.channel.is_in(list(kinds)),
            d.status.is_in(["pending", "sending"]),
        )
        .order_by(d.channel, d.recipient)
    )
    return msgspec.convert(rows, list[UnsentChatRow])
