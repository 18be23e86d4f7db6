"""The briefing of a hand-off: asked for when it is claimed, read by whoever holds it.

Made by the ``generate_briefing`` actor (actors.briefing) and kept on the hand-off;
``GET /handoffs/{id}/briefing`` answers 200 with it, or 202 while it is being made
(asking for it then, if nobody has yet).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from server.handoffs.jobs import GENERATE_BRIEFING
from server.handoffs.read import handoff_not_found
from tables import db

# Unless one is ready or already asked for: pending, and the ``generate_briefing`` job
# beside it (as a winning claim writes it, server.handoffs.claim).
REQUEST_BRIEFING = f"""
WITH marked AS (
    UPDATE session_handoffs SET briefing_status = 'pending', updated_at = now()
    WHERE id = $1 AND briefing_status IS DISTINCT FROM 'ready'
      AND briefing_status IS DISTINCT FROM 'pending'
    RETURNING id, account_id
)
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
SELECT gen_random_uuid(), account_id, '{GENERATE_BRIEFING}',
       jsonb_build_object('handoff_id', id::text), 0, now()
FROM marked
"""

READ_BRIEFING = """
SELECT briefing, briefing_status, session_id
FROM session_handoffs WHERE id = $1 AND account_id = $2
"""


@dataclass(frozen=True, slots=True)
class BriefingState:
    handoff_id: uuid.UUID
    session_id: uuid.UUID
    status: Literal["ready", "pending"]
    briefing: str | None


async def request_briefing(handoff_id: uuid.UUID) -> None:
    """Ask the workers for the briefing: marked pending and its job written in one
    statement, which the commit hands to the workers (no broker call on the request path)."""
    async with db.connection() as conn:
        await conn.execute(REQUEST_BRIEFING, handoff_id)


async def read_briefing(account_id: uuid.UUID, handoff_id: uuid.UUID) -> BriefingState:
    async with db.connection() as conn:
        row = await conn.fetchrow(READ_BRIEFING, handoff_id, account_id)
    if row is None:
        raise handoff_not_found()
    if row["briefing_status"] == "ready":
        return BriefingState(handoff_id, row["session_id"], "ready", row["briefing"])
    if row["briefing_status"] != "pending":
        await request_briefing(handoff_id)  # on demand: first read before any claim
    return BriefingState(handoff_id, row["session_id"], "pending", None)
