"""A hand-off as it is read, claimed and released (``session_handoffs`` and its people).

The columns every hand-off answer is built from are written once: the fields of
``HandoffRow``. Reads off the click path use the builder; claim and release are the
click path (see tables/queries/__init__.py for the measured reason) and stay SQL, their
conditions written from the state machine (tables/states.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec

from tables import db
from tables._columns import sql_list
from tables.delivery import ANNOUNCE_EVENTS, Outbox
from tables.enums import (
    AssessmentStatus,
    BriefingStatus,
    HandoffState,
    Intent,
    Priority,
    ResolveOutcome,
    SessionStatus,
)
from tables.handoffs import SessionHandoff
from tables.queries.policy_lookup import policy_of
from tables.states import CLAIM, RELEASE


class HandoffRow(msgspec.Struct, frozen=True, kw_only=True):
    """A hand-off with the names of the people on it: what every answer is built from."""

    id: uuid.UUID
    session_id: uuid.UUID
    intent: Intent
    state: HandoffState
    priority: Priority
    engineer_notes: str | None
    snapshot: dict[str, Any]
    source_branch_id: uuid.UUID | None
    target_user_id: uuid.UUID | None
    handed_off_by: uuid.UUID
    claimed_by: uuid.UUID | None
    claimed_at: datetime | None
    created_at: datetime
    assessment_status: AssessmentStatus
    ai_assessment: str | None
    ai_assessment_data: dict[str, Any] | None
    psa_note_pushed: bool
    psa_note_id: str | None
    # The policy clock (tables/tier_schedule.py); all null without a policy.
    policy_id: uuid.UUID | None = None
    claim_due_at: datetime | None = None
    breached_at: datetime | None = None
    last_tier: dict[str, Any] | None = None
    reminded_at: datetime | None = None
    # How it ended (POST /handoffs/{id}/resolve); all null before.
    resolution_outcome: ResolveOutcome | None = None
    resolution_note: str | None = None
    resolved_by: uuid.UUID | None = None
    resolved_at: datetime | None = None
    # Not columns of session_handoffs: joined from users.
    handed_off_by_name: str
    claimed_by_name: str | None
    # Only ``get`` joins it: claim and release answer hand-offs nobody has resolved.
    resolved_by_name: str | None = None


_NAMES: Final = ("handed_off_by_name", "claimed_by_name", "resolved_by_name")
_JSON_FIELDS: Final = ("snapshot", "ai_assessment_data", "last_tier")
COLUMN_NAMES: Final[tuple[str, ...]] = tuple(f for f in HandoffRow.__struct_fields__ if f not in _NAMES)
# For SQL over ``session_handoffs AS h``.
HANDOFF_COLUMNS: Final = ", ".join(f"h.{name}" for name in COLUMN_NAMES)


def _row(record: asyncpg.Record | dict[str, Any], **names: str | None) -> HandoffRow:
    """From a record of SQL on this module's connections, where JSONB arrives as text."""
    fields = dict(record)
    for name in _JSON_FIELDS:
        fields[name] = db.load_json(fields[name])
    if fields["snapshot"] is None:
        fields["snapshot"] = {}
    fields.update(names)
    return msgspec.convert(fields, HandoffRow)


# -- reads (off the click path: the builder) ------------------------------------------


async def get(*, account_id: uuid.UUID, handoff_id: uuid.UUID) -> HandoffRow | None:
    """The hand-off of ``account_id`` (None for a missing one or another account's).

    The builder: GET /handoffs/{id} is a page opening a card, and a claim's idempotent
    repeat; the click path's answers come from their own statements' RETURNING."""
    h = SessionHandoff
    row = await db.run(
        h.select(
            *(getattr(h, name) for name in COLUMN_NAMES),
            h.handed_off_by.name.as_alias("handed_off_by_name"),
            h.claimed_by.name.as_alias("claimed_by_name"),
            h.resolved_by.name.as_alias("resolved_by_name"),
        )
        .where((h.id == handoff_id) & (h.account_id == account_id))
        .first()
    )
    return None if row is None else _row(row)


async def exists(*, account_id: uuid.UUID, handoff_id: uuid.UUID) -> bool:
    h = SessionHandoff
    found: bool = await db.run(h.exists().where((h.id == handoff_id) & (h.account_id == account_id)))
    return found


async def open_sibling(*, account_id: uuid.UUID, handoff_id: uuid.UUID) -> uuid.UUID | None:
    """The open hand-off of the same session as ``handoff_id``, if any (at most one).

    The builder: asked only after a release lost its race to a create."""
    h = SessionHandoff
    mine = h.select(h.session_id).where((h.id == handoff_id) & (h.account_id == account_id))
    row = await db.run(h.select(h.id).where(h.session_id.is_in(mine) & (h.state == RELEASE.target)).first())
    return None if row is None else row["id"]


# -- claim (the click path: SQL) ----------------------------------------------------

# now() as msgspec writes a UTC datetime (tables.db.iso): microseconds only when non-zero.
ISO_NOW = """(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_part('microseconds', now())::bigint % 1000000 = 0 THEN ''
            ELSE to_char(now() AT TIME ZONE 'UTC', '.US') END
    || 'Z')"""

GENERATE_BRIEFING: Final = "generate_briefing"  # the actor a winning claim asks for the briefing

# One statement decides (SPEC "Claiming"): the conditional UPDATE of the state machine's
# CLAIM (from its sources, never by the creator), the session taken up (TAKE_UP), and the
# outbox jobs of a win (so they commit with it, and the commit's NOTIFY hands them to the
# workers): the briefing, unless one is ready, and the ``handoff_claimed`` event's
# announcement, built here so the event the web publishes and its fallback are the same
# bytes. Raw for its cost (the click path) and its shape (a data-modifying CTE chain).
# $1 hand-off, $2 account, $3 claimer, $4 announcement id, $5 claimer's name.
CLAIM_SQL = f"""
WITH won AS (
    UPDATE session_handoffs AS h
    SET state = '{CLAIM.target}', claimed_by = $3, claimed_at = now(), updated_at = now(),
        pre_claim_session_status = s.status,
        briefing_status = CASE WHEN h.briefing_status = 'ready' THEN 'ready' ELSE 'pending' END
    FROM ai_sessions AS s
    WHERE h.id = $1 AND h.account_id = $2
      AND h.state IN {sql_list(CLAIM.sources)} AND h.claimed_by IS NULL AND h.handed_off_by <> $3
      AND s.id = h.session_id
    RETURNING {HANDOFF_COLUMNS}, h.account_id, h.briefing_status
), taken_up AS (
    UPDATE ai_sessions AS s
    SET status = 'active', escalated_to_id = $3, updated_at = now()
    FROM won
    WHERE s.id = won.session_id
), event AS (
    SELECT jsonb_build_object(
        'type', 'handoff_claimed', 'handoff_id', won.id::text, 'session_id', won.session_id::text,
        'claimed_by_id', $3::text, 'claimed_by_name', $5::text, 'claimed_at', {ISO_NOW}
    ) AS body
    FROM won
), jobs AS (
    INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
    SELECT gen_random_uuid(), won.account_id, '{ANNOUNCE_EVENTS}',
           jsonb_build_object(
               'account_id', won.account_id::text, 'announcement_id', $4::text,
               'events', jsonb_build_array(event.body)
           ), 0, now()
    FROM won, event
    UNION ALL
    SELECT gen_random_uuid(), won.account_id, '{GENERATE_BRIEFING}',
           jsonb_build_object('handoff_id', won.id::text), 0, now()
    FROM won WHERE won.briefing_status = 'pending'
)
SELECT {", ".join(f"won.{name}" for name in COLUMN_NAMES)},
       by_user.name AS handed_off_by_name, $5::text AS claimed_by_name,
       event.body::text AS claimed_event
FROM won JOIN users AS by_user ON by_user.id = won.handed_off_by CROSS JOIN event
"""


class ClaimWon(msgspec.Struct, frozen=True, kw_only=True):
    handoff: HandoffRow
    claimed_event: str  # the handoff_claimed event's JSON, as its announcement holds it


async def claim(
    conn: asyncpg.Connection,
    *,
    handoff_id: uuid.UUID,
    account_id: uuid.UUID,
    claimer_id: uuid.UUID,
    claimer_name: str,
    announcement_id: uuid.UUID,
) -> ClaimWon | None:
    """The hand-off, if this claim won it; None when the conditions refused it."""
    record = await conn.fetchrow(
        CLAIM_SQL, handoff_id, account_id, claimer_id, str(announcement_id), claimer_name
    )
    if record is None:
        return None
    fields = dict(record)
    claimed_event = fields.pop("claimed_event")
    return ClaimWon(handoff=_row(fields), claimed_event=claimed_event)


# Why a claim found nothing to update, read by its loser: a statement of its own (its
# snapshot is taken after the winner committed), raw for the click path. claimed_by is
# compared in Python: in SQL, "claimed_by <> $3" is NULL, not true, for an unclaimed row.
WHY_NOT_CLAIMED = """
SELECT h.state, h.handed_off_by, h.claimed_by, h.claimed_at, claimer.name AS claimed_by_name
FROM session_handoffs AS h
LEFT JOIN users AS claimer ON claimer.id = h.claimed_by
WHERE h.id = $1 AND h.account_id = $2
"""


class ClaimObstacle(msgspec.Struct, frozen=True, kw_only=True):
    state: HandoffState
    handed_off_by: uuid.UUID
    claimed_by: uuid.UUID | None
    claimed_at: datetime | None
    claimed_by_name: str | None


async def claim_obstacle(
    conn: asyncpg.Connection, *, handoff_id: uuid.UUID, account_id: uuid.UUID
) -> ClaimObstacle | None:
    """The hand-off as a lost claim finds it; None when it is not this account's."""
    record = await conn.fetchrow(WHY_NOT_CLAIMED, handoff_id, account_id)
    return None if record is None else msgspec.convert(dict(record), ClaimObstacle)


# -- release (the click path: SQL) --------------------------------------------------

# The hand-off, locked, with the open hand-off of its session if there is one (at most
# one). The sibling is read in the lock's statement: should a create open one while this
# waits for the lock, the one-open-per-session index refuses the reopen instead.
LOCK_FOR_RELEASE = f"""
SELECT mine.state, mine.handed_off_by, mine.claimed_by, mine.session_id,
       mine.pre_claim_session_status, mine.target_user_id, sibling.id AS open_sibling_id,
       mine.intent, mine.priority, now() AS now,
       {policy_of("mine.account_id", "mine.team_id")} AS policy
FROM session_handoffs AS mine
LEFT JOIN session_handoffs AS sibling ON sibling.session_id = mine.session_id AND sibling.state = 'open'
WHERE mine.id = $1 AND mine.account_id = $2
FOR UPDATE OF mine
"""


class HeldHandoff(msgspec.Struct, frozen=True, kw_only=True):
    state: HandoffState
    handed_off_by: uuid.UUID
    claimed_by: uuid.UUID | None
    session_id: uuid.UUID
    pre_claim_session_status: SessionStatus | None
    target_user_id: uuid.UUID | None
    open_sibling_id: uuid.UUID | None
    intent: Intent
    priority: Priority
    now: datetime  # the transaction's clock
    policy: str | None  # JSON of the policy it follows now (tables/queries/policy_lookup.py)


async def lock_for_release(
    conn: asyncpg.Connection, *, handoff_id: uuid.UUID, account_id: uuid.UUID
) -> HeldHandoff | None:
    record = await conn.fetchrow(LOCK_FOR_RELEASE, handoff_id, account_id)
    return None if record is None else msgspec.convert(dict(record), HeldHandoff)


# The machine's RELEASE, and the session given back (GIVE_BACK: only while it is still
# active as the claim left it), in one statement that answers with the reopened row.
# $1 hand-off, $2 the session's status before the claim, $3 its escalated_to_id then;
# $4-$8 the policy copied anew and its restarted schedule (ReleaseClock), all NULL
# without a policy. The release count goes up: a tier after it is a new delivery.
REOPEN = f"""
WITH reopened AS (
    UPDATE session_handoffs AS h
    SET state = '{RELEASE.target}', claimed_by = NULL, claimed_at = NULL,
        pre_claim_session_status = NULL, updated_at = now(),
        release_count = h.release_count + 1,
        policy = $4::jsonb, policy_id = $5, tier_next = $6, tier_round = 1, tier_due_at = $7,
        claim_due_at = CASE WHEN $5::uuid IS NULL THEN h.claim_due_at ELSE $8 END
    FROM users AS by_user
    WHERE h.id = $1 AND h.state IN {sql_list(RELEASE.sources)} AND by_user.id = h.handed_off_by
    RETURNING {HANDOFF_COLUMNS}, by_user.name AS handed_off_by_name
), given_back AS (
    UPDATE ai_sessions AS s
    SET status = $2, escalated_to_id = $3, updated_at = now()
    FROM reopened
    WHERE s.id = reopened.session_id AND s.status = 'active'
)
SELECT * FROM reopened
"""


class ReleaseClock(msgspec.Struct, frozen=True, kw_only=True):
    """The policy a release copies anew (JSON) and the schedule it restarts."""

    policy: str
    policy_id: uuid.UUID
    tier_next: int | None
    tier_due_at: datetime | None
    claim_due_at: datetime | None


async def reopen(
    conn: asyncpg.Connection,
    *,
    handoff_id: uuid.UUID,
    session_status: SessionStatus,
    escalated_to_id: uuid.UUID | None,
    clock: ReleaseClock | None,
) -> HandoffRow | None:
    """None when the hand-off was not claimed (the caller holds its lock: a bug)."""
    schedule = (
        (None, None, None, None, None)
        if clock is None
        else (clock.policy, clock.policy_id, clock.tier_next, clock.tier_due_at, clock.claim_due_at)
    )
    record = await conn.fetchrow(REOPEN, handoff_id, session_status, escalated_to_id, *schedule)
    return None if record is None else _row(record, claimed_by_name=None)


# -- briefing (off the click path: the builder) --------------------------------------


class BriefingRow(msgspec.Struct, frozen=True, kw_only=True):
    session_id: uuid.UUID
    briefing: str | None
    briefing_status: BriefingStatus | None


async def briefing_of(*, account_id: uuid.UUID, handoff_id: uuid.UUID) -> BriefingRow | None:
    h = SessionHandoff
    row = await db.run(
        h.select(h.session_id, h.briefing, h.briefing_status)
        .where((h.id == handoff_id) & (h.account_id == account_id))
        .first()
    )
    return None if row is None else msgspec.convert(row, BriefingRow)


async def ask_for_briefing(*, handoff_id: uuid.UUID, now: datetime) -> bool:
    """Marks the briefing pending and writes its ``generate_briefing`` job, together,
    unless one is ready or already asked for; True when this call asked. The commit
    hands the job to the workers (no broker call on the request path)."""
    h = SessionHandoff
    async with db.transaction():
        marked = await db.run(
            h.update({h.briefing_status: "pending", h.updated_at: now})
            .where(
                (h.id == handoff_id)
                & (h.briefing_status.is_null() | h.briefing_status.not_in(["ready", "pending"]))
            )
            .returning(h.account_id)
        )
        if not marked:
            return False
        job = Outbox(
            id=uuid.uuid4(),
            account_id=marked[0]["account_id"],
            actor_name=GENERATE_BRIEFING,
            payload=db.dump_json({"handoff_id": str(handoff_id)}),
            attempts=0,
            created_at=now,
        )
        await db.run(Outbox.insert(job))
    return True
