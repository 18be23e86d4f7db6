"""Retrying a failed assessment: back to ``pending``, and the ``assess_handoff`` job written again.

Only a ``failed`` assessment is retried (a ``ready`` one is kept, a ``pending`` one is
already under way); the actor then runs exactly as it did for the escalation and
announces ``handoff_assessment_ready`` when it is done. The job is an outbox row written
in the transaction that marks the hand-off pending, as at create: its commit hands it to
the workers, and the web never waits on the broker (whose blocking send could not be
bounded once started in a thread).
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio

from server.handoffs.jobs import ASSESS_HANDOFF
from server.handoffs.read import get_handoff, handoff_not_found
from server.problems import Problem
from server.request_redis import REDIS_FAILURES, redis_deadline
from server.schemas.handoffs import HandoffOut
from tables import db
from tables.queries.assessment import assessment_status

log = logging.getLogger("baton.handoffs")

MARK_PENDING = """
UPDATE session_handoffs SET assessment_status = 'pending', updated_at = now()
WHERE id = $1 AND account_id = $2 AND assessment_status = 'failed'
RETURNING session_id
"""

INSERT_JOB = f"""
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
VALUES (gen_random_uuid(), $1, '{ASSESS_HANDOFF}',
        jsonb_build_object('handoff_id', $2::text, 'session_id', $3::text), 0, now())
"""

ASSESSMENT_READY_EVENT = "handoff_assessment_ready"


async def retry_assessment(
    *, account_id: uuid.UUID, handoff_id: uuid.UUID, redis_client: redis.asyncio.Redis
) -> HandoffOut:
    # Imported here: actors bind to REDIS_URL when imported (see server.handoffs.jobs).
    from actors.events import published_mark_key

    async with db.transaction() as conn:
        session_id = await conn.fetchval(MARK_PENDING, handoff_id, account_id)
        if session_id is None:
            status = await assessment_status(handoff_id=handoff_id, account_id=account_id)
            if status is None:
                raise handoff_not_found()
            if status != "pending":  # pending: a retry is already under way, nothing to add
                raise Problem(409, f"Only a failed assessment can be retried; this one is {status}.")
        else:
            try:
                # The failed run announced itself once; without this the retry's result
                # would be taken for a repeat and never reach the inboxes. Before the
                # commit that hands the job over, so the job never runs ahead of it.
                async with redis_deadline():
                    await redis_client.delete(
                        published_mark_key(account_id, handoff_id, ASSESSMENT_READY_EVENT)
                    )
            except REDIS_FAILURES as exc:
                log.warning(
                    "assessment retry of hand-off %s: Redis unreachable (%s)", handoff_id, type(exc).__name__
                )
                # Rolls the transaction back: the assessment stays failed.
                raise Problem(
                    503, "The inbox could not be reached to announce the retry; try again shortly."
                ) from None
            await conn.execute(INSERT_JOB, account_id, str(handoff_id), str(session_id))
    return await get_handoff(account_id, handoff_id)
