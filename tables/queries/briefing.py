"""A hand-off's briefing, as the workers save it (the web asks for it and reads it:
``server/handoffs/briefing.py``)."""

from __future__ import annotations

import uuid

from tables import db
from tables.handoffs import SessionHandoff
from tables.queries.clock import now


async def save_briefing(*, handoff_id: uuid.UUID, text: str) -> None:
    """``ready`` with ``text``, unless a briefing is ready already (kept: generated once).

    ``updated_at`` from the database's clock, set here: Piccolo's ``auto_update`` would
    take this process's clock (``use_auto_update=False``)."""
    await db.run(
        SessionHandoff.update(
            {
                SessionHandoff.briefing: text,
                SessionHandoff.briefing_status: "ready",
                SessionHandoff.updated_at: now(),
            },
            use_auto_update=False,
        ).where(
            SessionHandoff.id == handoff_id,
            # IS DISTINCT FROM 'ready', which Piccolo cannot say: NULL counts as not ready.
            (SessionHandoff.briefing_status != "ready") | SessionHandoff.briefing_status.is_null(),
        )
    )
