"""Claim: the first of any number of concurrent claimers, on any replica, wins.

One statement decides (SPEC "Claiming", tables.queries.handoffs.CLAIM_SQL): a
conditional ``UPDATE … WHERE state = 'open' AND claimed_by IS NULL AND handed_off_by <>
claimer RETURNING``, its conditions the state machine's ``CLAIM`` (tables/states.py).
Postgres row locks make concurrent claimers queue on the row; each re-checks the
condition against the winner's committed row and finds nothing to update. The same
statement takes the session up (``active``), so there is no window where a hand-off is
claimed and its session still waits.

Losers then read the row once to learn why, and the machine says which: their own
hand-off (403), already theirs (200, idempotent), someone else's (409 naming who and
when), or one that no claim can move any more (409).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import asyncpg
import redis.asyncio

from inbox.events import Event, decode_event
from server.auth import UserCaller
from server.handoffs.announce import announce
from server.handoffs.read import get_handoff, handoff_not_found, handoff_out
from server.problems import Problem
from server.schemas.handoffs import HandoffOut
from tables import db, states
from tables.queries import handoffs

log = logging.getLogger("baton.handoffs")

OWN_HANDOFF = "Cannot claim your own handoff"
# Why a hand-off in a final state cannot be claimed, by state.
FINAL_STATE_DETAIL = {
    "superseded": "This hand-off was superseded by a newer one for the same session.",
    "resolved": "This hand-off was resolved; it can no longer be claimed.",
}
# The row can change between the failed UPDATE and the read (a release in between), or
# the UPDATE can lose a deadlock: then the claim is simply tried again, a bounded number
# of times.
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Claimed:
    handoff: HandoffOut
    won_now: bool  # False: the caller already held it (an idempotent repeat)
    event: Event | None = None  # of a win: handoff_claimed, to publish after commit


@dataclass(frozen=True, slots=True)
class _AlreadyYours:
    """A repeat by the holder: answered with the hand-off as it is, read afterwards."""


async def _try_claim(
    conn: asyncpg.Connection, caller: UserCaller, handoff_id: uuid.UUID, announcement_id: uuid.UUID
) -> Claimed | _AlreadyYours | None:
    try:
        won = await handoffs.claim(
            conn,
            handoff_id=handoff_id,
            account_id=caller.account_id,
            claimer_id=caller.id,
            claimer_name=caller.name,
            announcement_id=announcement_id,
        )
    except db.RETRIED_ERRORS as exc:
        # A deadlock victim: escalating a parked session locks the session, then its park;
        # this statement locks them the other way round. Postgres rolled the statement
        # back; the next attempt sees what the escalation did.
        log.info("claim of %s aborted by Postgres (%s); trying again", handoff_id, type(exc).__name__)
        return None
    if won is not None:
        return Claimed(handoff_out(won.handoff), won_now=True, event=decode_event(won.claimed_event))

    why = await handoffs.claim_obstacle(conn, handoff_id=handoff_id, account_id=caller.account_id)
    if why is None:
        raise handoff_not_found()
    if why.state in states.FINAL_STATES:
        # Before who holds it: a resolved hand-off keeps its claimer, and a repeat by them
        # must not pass for an idempotent claim.
        raise Problem(409, FINAL_STATE_DETAIL[why.state])
    claimer = states.Caller(id=caller.id, role=caller.role)
    if not states.CLAIM.permits(claimer, creator_id=why.handed_off_by, holder_id=why.claimed_by):
        raise Problem(403, OWN_HANDOFF)
    if why.claimed_by == caller.id:
        return _AlreadyYours()
    if why.claimed_by is not None:
        name = why.claimed_by_name or "another engineer"
        raise Problem(
            409,
            f"Already claimed by {name}",
            claimed_by_id=str(why.claimed_by),
            claimed_by_name=name,
            claimed_at=db.iso(why.claimed_at) if why.claimed_at is not None else None,
        )
    return None  # claimable again by now: try once more


async def claim_handoff(
    *, caller: UserCaller, handoff_id: uuid.UUID, redis_client: redis.asyncio.Redis
) -> Claimed:
    announcement_id = uuid.uuid4()
    async with db.connection() as conn:
        for _ in range(CLAIM_ATTEMPTS):
            claimed = await _try_claim(conn, caller, handoff_id, announcement_id)
            if claimed is not None:
                break
        else:
            raise Problem(409, "The hand-off changed while claiming it; try again.")
    if isinstance(claimed, _AlreadyYours):
        # Read once the connection is back: a builder read takes a turn of its own.
        return Claimed(await get_handoff(caller.account_id, handoff_id), won_now=False)
    if claimed.event is not None:
        # The briefing job needs no hand-over: the commit NOTIFYs the outbox relays.
        await announce(redis_client, caller.account_id, claimed.event, announcement_id=announcement_id)
    return claimed
