"""The steps of a session, in order: what ``GET /sessions/{id}`` answers and the workers'
hand-off context reads (``tables/queries/handoff_context.py``)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from tables import db
from tables.sessions import SessionStep


class StepRecord(msgspec.Struct, frozen=True, kw_only=True):
    step_order: int
    content: dict[str, Any]  # {"text": ...}
    selected_option: str | None
    free_text_input: str | None
    was_skipped: bool


async def session_steps(*, session_id: uuid.UUID) -> list[StepRecord]:
    """By ``step_order`` (then id, for steps the host app numbered alike). On the current
    transaction when there is one."""
    rows = await db.run(
        SessionStep.select(
            SessionStep.step_order,
            SessionStep.content,
            SessionStep.selected_option,
            SessionStep.free_text_input,
            SessionStep.was_skipped,
        )
        .where(SessionStep.session_id == session_id)
        .order_by(SessionStep.step_order, SessionStep.id)
        .output(load_json=True)
    )
    return [
        StepRecord(**{**row, "content": row["content"] if isinstance(row["content"], dict) else {}})
        for row in rows
    ]
