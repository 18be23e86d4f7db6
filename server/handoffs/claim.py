"""Claim: the first of any number of concurrent claimers, on any replica, wins.

One statement decides (SPEC "Claiming"): a conditional ``UPDATE … WHERE state = 'open'
AND claimed_by IS NULL AND handed_off_by <> claimer RETURNING``. Postgres row locks
make concurrent claimers queue on the row; each re-checks the condition against the
winner's committed row and finds nothing to update. The same statement returns the
session to ``active`` (a data-modifying CTE), so there is no window where a hand-off is
claimed and its session still waits.

Losers then read the row once to learn why: their own hand-off (403), already theirs
(200, idempotent), someone else's (409 naming who and when).
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
from server.handoffs.jobs import GENERATE_BRIEFING
from server.handoffs.read import HANDOFF_COLUMNS, fetch_handoff, handoff_from_row, handoff_not_found
from server.problems import Problem
from server.schemas.handoffs import HandoffOut
from tables import db
from tables.delivery import ANNOUNCE_EVENTS

# now() as msgspec writes a UTC datetime (tables.db.iso): microseconds only when non-zero.
ISO_NOW = """(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_part('microseconds', now())::bigint % 1000000 = 0 THEN ''
            ELSE to_char(now() AT TIME ZONE 'UTC', '.US') END
    || 'Z')"""

# $1 hand-off, $2 account, $3 claimer, $4 announcement id, $5 claimer's name.
# Besides the claim itself, the one statement writes the outbox jobs of a win (so they
# commit with it, and the commit's NOTIFY hands them to the workers): the briefing,
# unless one is ready, and the ``handoff_claimed`` event's announcement, built here so
# the event the web publishes and its fallback are the same bytes.
CLAIM = f"""
WITH won AS (
    UPDATE session_handoffs AS h
    SET state = 'claimed', claimed_by = $3, claimed_at = now(), updated_at = now(),
        pre_claim_session_status = s.status,
        briefing_status = CASE WHEN h.briefing_status = 'ready' THEN 'ready' ELSE 'pending' END
    FROM ai_sessions AS s
    WHERE h.id = $1 AND h.account_id = $2
      AND h.state = 'open' AND h.claimed_by IS NULL AND h.handed_off_by <> $3
      AND s.id = h.session_id
    RETURNING {HANDOFF_COLUMNS}, h.account_id, h.briefing_status
), activated AS (
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
SELECT won.*, by_user.name AS handed_off_by_name, event.body::text AS claimed_event
FROM won JOIN users AS by_user ON by_user.id = won.handed_off_by CROSS JOIN event
"""

# Why a claim found nothing to update. claimed_by is compared in Python: in SQL,
# "claimed_by <> $3" is NULL, not true, for an unclaimed row.
WHY_NOT_CLAIMED = """
SELECT h.state, h.handed_off_by, h.claimed_by, h.claimed_at, claimer.name AS claimed_by_name
FROM session_handoffs AS h
LEFT JOIN users AS claimer ON claimer.id = h.claimed_by
WHERE h.id = $1 AND h.account_id = $2
"""

log = logging.getLogger("baton.handoffs")

OWN_HANDOFF = "Cannot claim your own handoff"
# The row can change between the failed UPDATE and the read (a release in between), or
# the UPDATE can lose a deadlock: then the claim is simply tried again, a bounded number
# of times.
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Claimed:
    handoff: HandoffOut
    won_now: bool  # False: the caller already held it (an idempotent repeat)
    event: Event | None = None  # of a win: handoff_claimed, to publish after commit


async def _try_claim(
    conn: asyncpg.Connection, caller: UserCaller, handoff_id: uuid.UUID, announcement_id: uuid.UUID
) -> Claimed | None:
    try:
        row = await conn.fetchrow(
            CLAIM, handoff_id, caller.account_id, caller.id, str(announcement_id), caller.name
        )
    except db.RETRIED_ERRORS as exc:
        # A deadlock victim: escalating a parked session locks the session, then its park;
        # this statement locks them the other way round. Postgres rolled the statement
        # back; the next attempt sees what the escalation did.
        log.info("claim of %s aborted by Postgres (%s); trying again", handoff_id, type(exc).__name__)
        return None
    if row is not None:
        handoff = handoff_from_row(
            row, handed_off_by_name=row["handed_off_by_name"], claimed_by_name=caller.name
        )
        return Claimed(handoff, won_now=True, event=decode_event(row["claimed_event"]))

    why = await conn.fetchrow(WHY_NOT_CLAIMED, handoff_id, caller.account_id)
    if why is None:
        raise handoff_not_found()
    if why["handed_off_by"] == caller.id:
        raise Problem(403, OWN_HANDOFF)
    if why["claimed_by"] == caller.id:
        held = await fetch_handoff(conn, caller.account_id, handoff_id)
        if held is None:
            raise handoff_not_found()
        return Claimed(held, won_now=False)
    if why["claimed_by"] is not None:
        name = why["claimed_by_name"] or "another engineer"
        raise Problem(
            409,
            f"Already claimed by {name}",
            claimed_by_id=str(why["claimed_by"]),
            claimed_by_name=name,
            claimed_at=db.iso(why["claimed_at"]),
        )
    if why["state"] == "superseded":
        raise Problem(409, "This hand-off was superseded by a newer one for the same session.")
    return None  # open again by now: try once more


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
    if claimed.event is not None:
        # The briefing job needs no hand-over: the commit NOTIFYs the outbox relays.
        await announce(redis_client, caller.account_id, claimed.event, announcement_id=announcement_id)
    return claimed
