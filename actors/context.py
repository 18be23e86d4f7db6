"""The hand-off context the actors read (``tables/queries/handoff_context.py``), and how
the prompts and notes render its steps and messages.
"""

from __future__ import annotations

import uuid
from typing import Any

from tables import db
from tables.queries.handoff_context import HandoffContext, Step, load_context

__all__ = ["HandoffContext", "Step", "load", "message_lines", "step_lines"]

MAX_MESSAGES_IN_PROMPT = 10
MESSAGE_MAX_CHARS = 200
FREE_TEXT_MAX_CHARS = 100


async def load(handoff_id: uuid.UUID) -> HandoffContext | None:
    """The hand-off as it is now, with its session, steps and messages; None when gone."""
    return await load_context(handoff_id=handoff_id)


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
