"""The statements of a create (park or escalate), in the order server.handoffs.create runs
them inside its one transaction.

The click path, so SQL (the measured reason: tables/queries/__init__.py), each function
on the caller's connection, which holds the transaction. ``NewHandoff`` names every
value of the insert: the column list and the placeholders are written from its fields.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from tables._columns import sql_list
from tables.enums import Intent, SessionStatus
from tables.queries.policy_lookup import policy_of
from tables.states import CREATE, SUPERSEDE

# The session, locked for the whole create, and whether the target (if any: $3) is an
# eligible user of the account, in the same round trip.
LOCK_SESSION = f"""
SELECT s.id, s.status, s.team_id, s.problem_summary, s.problem_domain, s.step_count,
       s.confidence_tier, s.is_branching, s.active_branch_id, s.psa_ticket_id, now() AS now,
       $3::uuid IS NULL OR EXISTS (
           SELECT 1 FROM users AS u
           WHERE u.id = $3 AND u.account_id = $2 AND u.is_active AND u.deleted_at IS NULL
       ) AS target_eligible,
       {policy_of("$2", "s.team_id")} AS policy
FROM ai_sessions AS s
WHERE s.id = $1 AND s.account_id = $2
FOR UPDATE OF s
"""


class LockedSession(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    status: SessionStatus
    team_id: uuid.UUID | None
    problem_summary: str | None
    problem_domain: str | None
    step_count: int
    confidence_tier: str | None
    is_branching: bool
    active_branch_id: uuid.UUID | None
    psa_ticket_id: str | None
    now: datetime  # the transaction's clock: every timestamp the create writes
    target_eligible: bool  # True when no target was named
    # The escalation policy it follows (JSON: tables.policy_shapes.PolicyCopy): the
    # session team's, else the account's default; None: the built-in default.
    policy: str | None


async def lock_session(
    conn: asyncpg.Connection,
    *,
    session_id: uuid.UUID,
    account_id: uuid.UUID,
    target_user_id: uuid.UUID | None,
) -> LockedSession | None:
    record = await conn.fetchrow(LOCK_SESSION, session_id, account_id, target_user_id)
    return None if record is None else msgspec.convert(dict(record), LockedSession)


# Its own statement, after the lock: a statement's snapshot is taken before it waits for
# a lock, so only a later statement sees what the previous holder of the lock committed.
# Also what a create that lost a race to the unique indexes reads (with the other
# argument NULL): the open hand-off, or the one of the same key.
OPEN_OR_SAME_KEY = """
SELECT id, intent, idempotency_key, request_fingerprint, response
FROM session_handoffs
WHERE (session_id = $1 AND state = 'open')
   OR (account_id = $2 AND idempotency_key = $3)
"""


class ExistingHandoff(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    intent: Intent
    idempotency_key: str | None
    request_fingerprint: str | None
    response: str | None  # the first answer's JSON, replayed for the same key


async def open_or_same_key(
    conn: asyncpg.Connection,
    *,
    session_id: uuid.UUID | None,
    account_id: uuid.UUID,
    idempotency_key: str | None,
) -> list[ExistingHandoff]:
    records = await conn.fetch(OPEN_OR_SAME_KEY, session_id, account_id, idempotency_key)
    return [msgspec.convert(dict(record), ExistingHandoff) for record in records]


# Only for a branching session: its branches as the snapshot keeps them.
BRANCH_MAP = """
SELECT id, label, status, status_reason, parent_branch_id
FROM session_branches
WHERE session_id = $1
ORDER BY branch_order, id
"""


class Branch(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    label: str
    status: str
    status_reason: str | None
    parent_branch_id: uuid.UUID | None


async def branch_map(conn: asyncpg.Connection, *, session_id: uuid.UUID) -> list[Branch]:
    records = await conn.fetch(BRANCH_MAP, session_id)
    return [msgspec.convert(dict(record), Branch) for record in records]


# The machine's SUPERSEDE. Before the insert: the one-open-per-session index must be free.
SUPERSEDE_SQL = f"""
UPDATE session_handoffs SET state = '{SUPERSEDE.target}', updated_at = $2
WHERE id = $1 AND state IN {sql_list(SUPERSEDE.sources)}
"""


async def supersede(conn: asyncpg.Connection, *, handoff_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(SUPERSEDE_SQL, handoff_id, now)


class NewHandoff(msgspec.Struct, frozen=True, kw_only=True):
    """The hand-off a create inserts: one field per column written."""

    id: uuid.UUID
    session_id: uuid.UUID
    account_id: uuid.UUID
    team_id: uuid.UUID | None
    handed_off_by: uuid.UUID
    intent: Intent
    source_branch_id: uuid.UUID | None
    snapshot: str  # JSON
    assessment_status: str
    engineer_notes: str | None
    priority: str
    target_user_id: uuid.UUID | None
    idempotency_key: str | None
    request_fingerprint: str | None
    response: str | None  # JSON: the answer, kept to replay it for the same key
    created_at: datetime
    # The escalation policy copied onto it and its schedule (all None: the built-in default).
    policy: str | None = None  # JSON
    policy_id: uuid.UUID | None = None
    tier_next: int | None = None
    tier_due_at: datetime | None = None
    claim_due_at: datetime | None = None


class SessionAfterCreate(msgspec.Struct, frozen=True, kw_only=True):
    """What a create changes on its session (``handoff_count`` goes up by one)."""

    status: SessionStatus
    escalation_package: str  # JSON: {snapshot, intent, engineer_notes, handoff_id}
    # An escalation names its reason and target; a park leaves both as they were.
    sets_escalation: bool
    escalation_reason: str | None
    escalated_to_id: uuid.UUID | None


_JSONB: Final = frozenset({"snapshot", "response", "escalation_package", "policy"})
_HANDOFF_FIELDS: Final = NewHandoff.__struct_fields__
_SESSION_FIELDS: Final = SessionAfterCreate.__struct_fields__


def _placeholder(field: str, number: int) -> str:
    return f"${number}::jsonb" if field in _JSONB else f"${number}"


_HANDOFF_VALUES = {field: _placeholder(field, n) for n, field in enumerate(_HANDOFF_FIELDS, 1)}
_SESSION_VALUES = {
    field: _placeholder(field, n) for n, field in enumerate(_SESSION_FIELDS, len(_HANDOFF_FIELDS) + 1)
}

# The hand-off and its session's change in one statement (one round trip). Reads as:
# WITH inserted AS (INSERT INTO session_handoffs (id, …, created_at, state, updated_at)
# VALUES ($1, …, $16, 'open', $16)) UPDATE ai_sessions SET status = $17, … WHERE id = $2
INSERT_HANDOFF = f"""
WITH inserted AS (
    INSERT INTO session_handoffs ({", ".join(_HANDOFF_FIELDS)}, state, updated_at)
    VALUES ({", ".join(_HANDOFF_VALUES.values())}, '{CREATE.target}', {_HANDOFF_VALUES["created_at"]})
)
UPDATE ai_sessions
SET status = {_SESSION_VALUES["status"]}, handoff_count = handoff_count + 1,
    escalation_package = {_SESSION_VALUES["escalation_package"]},
    escalation_reason = CASE WHEN {_SESSION_VALUES["sets_escalation"]}
                             THEN {_SESSION_VALUES["escalation_reason"]} ELSE escalation_reason END,
    escalated_to_id = CASE WHEN {_SESSION_VALUES["sets_escalation"]}
                           THEN {_SESSION_VALUES["escalated_to_id"]}::uuid ELSE escalated_to_id END,
    updated_at = {_HANDOFF_VALUES["created_at"]}
WHERE id = {_HANDOFF_VALUES["session_id"]}
"""


async def insert_handoff(
    conn: asyncpg.Connection, *, handoff: NewHandoff, session: SessionAfterCreate
) -> None:
    """Raises ``asyncpg.UniqueViolationError`` when a concurrent create won a race the
    indexes referee (one open per session, one per idempotency key)."""
    await conn.execute(
        INSERT_HANDOFF,
        *(getattr(handoff, field) for field in _HANDOFF_FIELDS),
        *(getattr(session, field) for field in _SESSION_FIELDS),
    )
