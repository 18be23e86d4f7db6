"""A hand-off with its session, steps and messages: what the actors read before working.

Read fresh by every run, so a retry sees the hand-off as it is now (claimed, assessed…).
Rendering it (step lines, message lines) is the actors' (``actors/context.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from tables import db
from tables.handoffs import SessionHandoff
from tables.queries.session_steps import session_steps


class Step(msgspec.Struct, frozen=True):
    order: int
    text: str
    selected_option: str | None
    free_text_input: str | None
    was_skipped: bool


class HandoffContext(msgspec.Struct, frozen=True, kw_only=True):
    handoff_id: uuid.UUID
    account_id: uuid.UUID
    session_id: uuid.UUID
    intent: str
    state: str
    priority: str
    engineer_notes: str | None
    snapshot: dict[str, Any]
    created_at: datetime
    handed_off_by: uuid.UUID
    handed_off_by_name: str
    claimed_by: uuid.UUID | None
    assessment_status: str
    ai_assessment: str | None
    ai_assessment_data: dict[str, Any] | None
    briefing: str | None
    briefing_status: str | None
    reminded_at: datetime | None
    problem_summary: str | None
    problem_domain: str | None
    escalation_reason: str | None
    psa_ticket_id: str | None
    psa_connection_id: uuid.UUID | None
    # How it ended (POST /handoffs/{id}/resolve): null before, and the outcome's messages say it.
    resolution_outcome: str | None = None
    resolution_note: str | None = None
    resolved_by: uuid.UUID | None = None
    resolved_by_name: str | None = None
    messages: list[dict[str, Any]] = []
    steps: list[Step] = []


_session = SessionHandoff.session_id
# The hand-off's columns, then its session's and its creator's (joined by Piccolo through
# the foreign keys; both are NOT NULL, so its LEFT JOINs find exactly one row each), and
# its resolver's name (NULL until it is resolved).
_COLUMNS = (
    SessionHandoff.id.as_alias("handoff_id"),
    SessionHandoff.account_id,
    SessionHandoff.session_id,
    SessionHandoff.intent,
    SessionHandoff.state,
    SessionHandoff.priority,
    SessionHandoff.engineer_notes,
    SessionHandoff.snapshot,
    SessionHandoff.created_at,
    SessionHandoff.handed_off_by,
    SessionHandoff.handed_off_by.name.as_alias("handed_off_by_name"),
    SessionHandoff.claimed_by,
    SessionHandoff.assessment_status,
    SessionHandoff.ai_assessment,
    SessionHandoff.ai_assessment_data,
    SessionHandoff.briefing,
    SessionHandoff.briefing_status,
    SessionHandoff.reminded_at,
    SessionHandoff.resolution_outcome,
    SessionHandoff.resolution_note,
    SessionHandoff.resolved_by,
    SessionHandoff.resolved_by.name.as_alias("resolved_by_name"),
    _session.problem_summary.as_alias("problem_summary"),
    _session.problem_domain.as_alias("problem_domain"),
    _session.escalation_reason.as_alias("escalation_reason"),
    _session.psa_ticket_id.as_alias("psa_ticket_id"),
    _session.psa_connection_id.as_alias("psa_connection_id"),
    _session.conversation_messages.as_alias("messages"),
)


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [message for message in value if isinstance(message, dict)]


def _step_text(content: dict[str, Any]) -> str:
    text = content.get("text")
    return text if isinstance(text, str) else ""


async def load_context(*, handoff_id: uuid.UUID) -> HandoffContext | None:
    rows = await db.run(
        SessionHandoff.select(*_COLUMNS).where(SessionHandoff.id == handoff_id).output(load_json=True)
    )
    if not rows:
        return None
    row = rows[0]
    steps = await session_steps(session_id=row["session_id"])
    data = row["ai_assessment_data"]
    return HandoffContext(
        **{
            **row,
            "snapshot": row["snapshot"] if isinstance(row["snapshot"], dict) else {},
            "ai_assessment_data": data if isinstance(data, dict) else None,
            "messages": _messages(row["messages"]),
        },
        steps=[
            Step(
                step.step_order,
                _step_text(step.content),
                step.selected_option,
                step.free_text_input,
                step.was_skipped,
            )
            for step in steps
        ],
    )
