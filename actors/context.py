"""A hand-off with its session, steps and messages: what the actors read before working.

Read fresh by every run, so a retry sees the hand-off as it is now (claimed, assessed…).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tables import db

MAX_MESSAGES_IN_PROMPT = 10
MESSAGE_MAX_CHARS = 200
FREE_TEXT_MAX_CHARS = 100


@dataclass(frozen=True)
class Step:
    order: int
    text: str
    selected_option: str | None
    free_text_input: str | None
    was_skipped: bool


@dataclass(frozen=True)
class HandoffContext:
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
    messages: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


LOAD_HANDOFF = """
SELECT h.id, h.account_id, h.session_id, h.intent, h.state, h.priority, h.engineer_notes,
       h.snapshot, h.created_at, h.handed_off_by, creator.name AS handed_off_by_name,
       h.claimed_by, h.assessment_status, h.ai_assessment, h.ai_assessment_data,
       h.briefing, h.briefing_status, h.reminded_at,
       s.problem_summary, s.problem_domain, s.escalation_reason, s.psa_ticket_id,
       s.psa_connection_id, s.conversation_messages
FROM session_handoffs AS h
JOIN ai_sessions AS s ON s.id = h.session_id
JOIN users AS creator ON creator.id = h.handed_off_by
WHERE h.id = $1
"""

LOAD_STEPS = """
SELECT step_order, content, selected_option, free_text_input, was_skipped
FROM session_steps WHERE session_id = $1 ORDER BY step_order, id
"""


def _step_text(content: Any) -> str:
    data = db.load_json(content) if isinstance(content, str) else content
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        return data["text"]
    return ""


def _messages(raw: Any) -> list[dict[str, Any]]:
    value = db.load_json(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list):
        return []
    return [message for message in value if isinstance(message, dict)]


async def load(handoff_id: uuid.UUID) -> HandoffContext | None:
    async with db.connection() as conn:
        row = await conn.fetchrow(LOAD_HANDOFF, handoff_id)
        if row is None:
            return None
        step_rows = await conn.fetch(LOAD_STEPS, row["session_id"])
    data = db.load_json(row["ai_assessment_data"])
    return HandoffContext(
        handoff_id=row["id"],
        account_id=row["account_id"],
        session_id=row["session_id"],
        intent=row["intent"],
        state=row["state"],
        priority=row["priority"],
        engineer_notes=row["engineer_notes"],
        snapshot=db.load_json(row["snapshot"]) or {},
        created_at=row["created_at"],
        handed_off_by=row["handed_off_by"],
        handed_off_by_name=row["handed_off_by_name"],
        claimed_by=row["claimed_by"],
        assessment_status=row["assessment_status"],
        ai_assessment=row["ai_assessment"],
        ai_assessment_data=data if isinstance(data, dict) else None,
        briefing=row["briefing"],
        briefing_status=row["briefing_status"],
        reminded_at=row["reminded_at"],
        problem_summary=row["problem_summary"],
        problem_domain=row["problem_domain"],
        escalation_reason=row["escalation_reason"],
        psa_ticket_id=row["psa_ticket_id"],
        psa_connection_id=row["psa_connection_id"],
        messages=_messages(row["conversation_messages"]),
        steps=[
            Step(
                order=step["step_order"],
                text=_step_text(step["content"]),
                selected_option=step["selected_option"],
                free_text_input=step["free_text_input"],
                was_skipped=step["was_skipped"],
            )
            for step in step_rows
        ],
    )


def step_lines(steps: list[Step]) -> list[str]:
    """The seed's rendering: "text → option", "text → free text[:100]", "text (skipped)"."""
    lines = []
    for step in sorted(steps, key=lambda s: s.order):
        text = step.text.strip()
        if not text:
            continue
        if step.selected_option:
            text += f" → {step.selected_option}"
        elif step.free_text_input:
            text += f" → {step.free_text_input[:FREE_TEXT_MAX_CHARS]}"
        elif step.was_skipped:
            text += " (skipped)"
        lines.append(text)
    return lines


def message_lines(messages: list[dict[str, Any]]) -> list[str]:
    """The last messages as "[role]: content", each cut to MESSAGE_MAX_CHARS."""
    lines = []
    for message in messages[-MAX_MESSAGES_IN_PROMPT:]:
        content = message.get("content", "")
        if not isinstance(content, str):
            content = db.dump_json(content)
        lines.append(f"[{message.get('role', '?')}]: {content[:MESSAGE_MAX_CHARS]}")
    return lines
