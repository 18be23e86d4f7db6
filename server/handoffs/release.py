"""Release: a claimed hand-off goes back to the queue, its session back to how it was.

Allowed to whoever holds it and to an owner or admin (who may free a card a colleague
sat on). The session returns to the status it had before the claim and to the hand-off's
target, unless the host app has moved it on since (it is no longer ``active``); a release
is refused while a newer hand-off of the same session is open, since a session has at
most one open hand-off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import redis.asyncio

from inbox.events import HandoffReleased
from server.auth import RELEASE_ANY_ROLES, UserCaller
from server.handoffs.announce import announce
from server.handoffs.jobs import enqueue_announcement
from server.handoffs.read import fetch_handoff, handoff_not_found
from server.problems import Problem
from server.schemas.handoffs import HandoffOut
from tables import db

LOCK_HANDOFF = """
SELECT state, claimed_by, session_id, pre_claim_session_status, target_user_id
FROM session_handoffs
WHERE id = $1 AND account_id = $2
FOR UPDATE
"""

# The open hand-off of the same session, if any (a session has at most one).
OPEN_SIBLING = """
SELECT sibling.id
FROM session_handoffs AS mine
JOIN session_handoffs AS sibling ON sibling.session_id = mine.session_id AND sibling.state = 'open'
WHERE mine.id = $1 AND mine.account_id = $2
"""

REOPEN = """
UPDATE session_handoffs
SET state = 'open', claimed_by = NULL, claimed_at = NULL, pre_claim_session_status = NULL,
    updated_at = now()
WHERE id = $1
"""

RESTORE_SESSION = """
UPDATE ai_sessions
SET status = $2, escalated_to_id = $3, updated_at = now()
WHERE id = $1 AND status = 'active'
"""


@dataclass(frozen=True, slots=True)
class Released:
    handoff: HandoffOut
    event: HandoffReleased
    announcement_id: uuid.UUID  # of the event's fallback outbox job


async def _release(conn: asyncpg.Connection, caller: UserCaller, handoff_id: uuid.UUID) -> Released:
    row = await conn.fetchrow(LOCK_HANDOFF, handoff_id, caller.account_id)
    if row is None:
        raise handoff_not_found()
    if row["state"] != "claimed":
        raise Problem(409, f"Only a claimed hand-off can be released; this one is {row['state']}.")
    if row["claimed_by"] != caller.id and caller.role not in RELEASE_ANY_ROLES:
        raise Problem(403, "Only whoever claimed this hand-off, or an owner or admin, can release it.")
    other_open = await conn.fetchval(OPEN_SIBLING, handoff_id, caller.account_id)
    if other_open is not None:
        raise _newer_open_handoff(other_open)
    await conn.execute(REOPEN, handoff_id)
    await conn.execute(
        RESTORE_SESSION,
        row["session_id"],
        row["pre_claim_session_status"] or "active",
        row["target_user_id"],
    )
    handoff = await fetch_handoff(conn, caller.account_id, handoff_id)
    assert handoff is not None
    event = HandoffReleased(handoff_id=str(handoff_id), session_id=str(handoff.session_id))
    # Committed with the release: if the publish below cannot reach Redis, the workers do.
    announcement_id = await enqueue_announcement(conn, account_id=caller.account_id, events=[event])
    return Released(handoff, event, announcement_id)


def _newer_open_handoff(open_handoff_id: uuid.UUID) -> Problem:
    return Problem(
        409,
        "The session has a newer open hand-off; this one cannot be reopened.",
        open_handoff_id=str(open_handoff_id),
    )


async def release_handoff(
    *, caller: UserCaller, handoff_id: uuid.UUID, redis_client: redis.asyncio.Redis
) -> HandoffOut:
    try:
        released = await db.in_transaction(lambda conn: _release(conn, caller, handoff_id))
    except asyncpg.UniqueViolationError:
        # A create committed a new open hand-off between our check and our reopen.
        async with db.connection() as conn:
            other_open = await conn.fetchval(OPEN_SIBLING, handoff_id, caller.account_id)
        if other_open is None:
            raise
        raise _newer_open_handoff(other_open) from None
    await announce(redis_client, caller.account_id, released.event, announcement_id=released.announcement_id)
    return released.handoff
