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
from datetime import UTC, datetime

import redis.asyncio

from inbox import keys
from inbox.events import HandoffAssessmentReady
from server.handoffs.jobs import ASSESS_HANDOFF
from server.handoffs.read import get_handoff, handoff_not_found
from server.problems import Problem
from server.request_redis import REDIS_FAILURES, redis_deadline
from server.schemas.handoffs import HandoffOut
from tables import db
from tables.queries.assessment import assessment_status, mark_retry_pending
from tables.queries.outbox import ChangeJob, write_change_jobs

log = logging.getLogger("baton.handoffs")

# The event the failed run announced once (and whose once-mark a retry clears).
ASSESSMENT_READY_EVENT: str = HandoffAssessmentReady.__struct_config__.tag  # type: ignore[assignment]


async def retry_assessment(
    *, account_id: uuid.UUID, handoff_id: uuid.UUID, redis_client: redis.asyncio.Redis
) -> HandoffOut:
    async with db.transaction() as conn:
        session_id = await mark_retry_pending(handoff_id=handoff_id, account_id=account_id)
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
                        keys.handoff_event_mark(account_id, handoff_id, ASSESSMENT_READY_EVENT)
                    )
            except REDIS_FAILURES as exc:
                log.warning(
                    "assessment retry of hand-off %s: Redis unreachable (%s)", handoff_id, type(exc).__name__
                )
                # Rolls the transaction back: the assessment stays failed.
                raise Problem(
                    503, "The inbox could not be reached to announce the retry; try again shortly."
                ) from None
            payload = db.dump_json({"handoff_id": str(handoff_id), "session_id": str(session_id)})
            job = ChangeJob(actor_name=ASSESS_HANDOFF, payload=payload)
            await write_change_jobs(conn, account_id=account_id, jobs=[job], now=datetime.now(UTC))
    return await get_handoff(account_id, handoff_id)
