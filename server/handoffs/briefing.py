"""The briefing of a hand-off: asked for when it is claimed, read by whoever holds it.

Made by the ``generate_briefing`` actor (actors.briefing) and kept on the hand-off;
``GET /handoffs/{id}/briefing`` answers 200 with it, or 202 while it is being made
(asking for it then, if nobody has yet).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from server import db
from server.handoffs.read import handoff_not_found

log = logging.getLogger("baton.handoffs")

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
    """Ask the workers for the briefing; never raises (the claim has already committed)."""
    from actors.briefing import request  # here: actors bind to REDIS_URL when imported

    try:
        await request(handoff_id)
    except Exception:
        log.exception("could not ask for the briefing of hand-off %s; it is asked again on read", handoff_id)


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
