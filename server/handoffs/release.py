"""Release: a claimed hand-off goes back to the queue, its session back to how it was.

The state machine's ``RELEASE`` (tables/states.py): from ``claimed``, by whoever holds
it or an owner or admin (who may free a card a colleague sat on). The session returns
to the status it had before the claim and to the hand-off's target, unless the host app
has moved it on since (it is no longer ``active``); a release is refused while a newer
hand-off of the same session is open, since a session has at most one open hand-off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec
import redis.asyncio

from inbox.events import HandoffReleased
from server.auth import UserCaller
from server.handoffs.announce import announce
from server.handoffs.jobs import announcement_job
from server.handoffs.read import handoff_not_found, handoff_out
from server.problems import Problem
from server.schemas.handoffs import HandoffOut
from tables import db, states, tier_schedule
from tables.policy_shapes import PolicyCopy
from tables.queries import handoffs, outbox


@dataclass(frozen=True, slots=True)
class Released:
    handoff: HandoffOut
    event: HandoffReleased
    announcement_id: uuid.UUID  # of the event's fallback outbox job


async def _release(conn: asyncpg.Connection, caller: UserCaller, handoff_id: uuid.UUID) -> Released:
    held = await handoffs.lock_for_release(conn, handoff_id=handoff_id, account_id=caller.account_id)
    if held is None:
        raise handoff_not_found()
    if not states.RELEASE.starts_from(held.state):
        raise Problem(409, f"Only a claimed hand-off can be released; this one is {held.state}.")
    releaser = states.Caller(id=caller.id, role=caller.role)
    if not states.RELEASE.permits(releaser, creator_id=held.handed_off_by, holder_id=held.claimed_by):
        raise Problem(403, "Only whoever claimed this hand-off, or an owner or admin, can release it.")
    if held.open_sibling_id is not None:
        raise _newer_open_handoff(held.open_sibling_id)
    row = await handoffs.reopen(
        conn,
        handoff_id=handoff_id,
        session_status=held.pre_claim_session_status or "active",
        escalated_to_id=held.target_user_id,
        clock=_release_clock(held),
    )
    assert row is not None, "a locked claimed hand-off reopens"
    event = HandoffReleased(handoff_id=str(handoff_id), session_id=str(row.session_id))
    # Committed with the release: if the publish below cannot reach Redis, the workers do.
    job, announcement_id = announcement_job(account_id=caller.account_id, events=[event])
    await outbox.write_change_jobs(conn, account_id=caller.account_id, jobs=[job], now=datetime.now(UTC))
    return Released(handoff_out(row), event, announcement_id)


def _release_clock(held: handoffs.HeldHandoff) -> handoffs.ReleaseClock | None:
    """The policy copied anew, restarted from tier 1 and its SLA counted from now; None
    for a park and under the built-in default (whose reminder never comes again)."""
    if held.intent != states.REMINDED_INTENT or held.policy is None:
        return None
    policy = msgspec.json.decode(held.policy, type=PolicyCopy)
    restart = tier_schedule.after_release(policy, held.now)
    return handoffs.ReleaseClock(
        policy=held.policy,
        policy_id=policy.id,
        tier_next=None if restart is None else restart.tier,
        tier_due_at=None if restart is None else restart.at,
        claim_due_at=tier_schedule.claim_due_at(policy, held.priority, held.now),
    )


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
        other_open = await handoffs.open_sibling(account_id=caller.account_id, handoff_id=handoff_id)
        if other_open is None:
            raise
        raise _newer_open_handoff(other_open) from None
    await announce(redis_client, caller.account_id, released.event, announcement_id=released.announcement_id)
    return released.handoff
