"""Retrying a failed assessment: back to ``pending``, and the ``assess_handoff`` actor sent again.

Only a ``failed`` assessment is retried (a ``ready`` one is kept, a ``pending`` one is
already under way); the actor then runs exactly as it did for the escalation and
announces ``handoff_assessment_ready`` when it is done.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import redis.asyncio

from server import db
from server.handoffs.read import get_handoff, handoff_not_found
from server.problems import Problem
from server.schemas.handoffs import HandoffOut

log = logging.getLogger("baton.handoffs")

MARK_PENDING = """
UPDATE session_handoffs SET assessment_status = 'pending', updated_at = now()
WHERE id = $1 AND account_id = $2 AND assessment_status = 'failed'
RETURNING session_id
"""

MARK_FAILED_AGAIN = """
UPDATE session_handoffs SET assessment_status = 'failed', updated_at = now()
WHERE id = $1 AND assessment_status = 'pending'
"""

STATUS = "SELECT assessment_status FROM session_handoffs WHERE id = $1 AND account_id = $2"

ASSESSMENT_READY_EVENT = "handoff_assessment_ready"


async def retry_assessment(
    *, account_id: uuid.UUID, handoff_id: uuid.UUID, redis_client: redis.asyncio.Redis
) -> HandoffOut:
    async with db.connection() as conn:
        session_id = await conn.fetchval(MARK_PENDING, handoff_id, account_id)
        status = None if session_id is not None else await conn.fetchval(STATUS, handoff_id, account_id)
    if session_id is None:
        if status is None:
            raise handoff_not_found()
        if status != "pending":  # pending: a retry is already under way, nothing to add
            raise Problem(409, f"Only a failed assessment can be retried; this one is {status}.")
        return await get_handoff(account_id, handoff_id)

    # Imported here: actors bind to REDIS_URL when imported (see server.handoffs.jobs).
    from actors.assessment import assess_handoff
    from actors.events import published_mark_key

    try:
        # The failed run announced itself once; without this the retry's result would
        # be taken for a repeat and never reach the inboxes.
        await redis_client.delete(published_mark_key(account_id, handoff_id, ASSESSMENT_READY_EVENT))
        # Dramatiq's send is a blocking Redis call: off the event loop.
        await asyncio.to_thread(assess_handoff.send, str(handoff_id), str(session_id))
    except Exception:
        log.exception("could not send the assessment retry of hand-off %s", handoff_id)
        async with db.connection() as conn:
            await conn.execute(MARK_FAILED_AGAIN, handoff_id)
        raise Problem(503, "The background workers could not be reached; try again shortly.") from None
    return await get_handoff(account_id, handoff_id)
