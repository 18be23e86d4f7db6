"""The briefing of a hand-off: asked for when it is claimed, read by whoever holds it.

Made by the ``generate_briefing`` actor (actors.briefing) and kept on the hand-off;
``GET /handoffs/{id}/briefing`` answers 200 with it, or 202 while it is being made
(asking for it then, if nobody has yet: ``tables.queries.handoffs.ask_for_briefing``
marks it pending and writes the job beside it, as a winning claim does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from server.handoffs.read import handoff_not_found
from tables.queries import handoffs


@dataclass(frozen=True, slots=True)
class BriefingState:
    handoff_id: uuid.UUID
    session_id: uuid.UUID
    status: Literal["ready", "pending"]
    briefing: str | None


async def request_briefing(handoff_id: uuid.UUID) -> None:
    """Ask the workers for the briefing (no broker call on the request path: the job's
    commit hands it to them)."""
    await handoffs.ask_for_briefing(handoff_id=handoff_id, now=datetime.now(UTC))


async def read_briefing(account_id: uuid.UUID, handoff_id: uuid.UUID) -> BriefingState:
    row = await handoffs.briefing_of(account_id=account_id, handoff_id=handoff_id)
    if row is None:
        raise handoff_not_found()
    if row.briefing_status == "ready":
        return BriefingState(handoff_id, row.session_id, "ready", row.briefing)
    if row.briefing_status != "pending":
        await request_briefing(handoff_id)  # on demand: first read before any claim
    return BriefingState(handoff_id, row.session_id, "pending", None)
