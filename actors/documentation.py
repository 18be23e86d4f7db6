"""The session documentation: what a PSA ticket note says about an escalation.

Problem, domain, who escalated and why, the steps tried, and the AI assessment when it
is ready. The last line names the hand-off (``note_marker``): the PSA adapters look for
it to tell whether a note was already posted by an attempt that crashed.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from actors.context import HandoffContext, step_lines

MAX_STEPS_IN_NOTE = 30
NO_REASON = "No reason provided."


class Documentation(msgspec.Struct, kw_only=True):
    title: str
    problem_summary: str | None
    problem_domain: str | None
    escalation_reason: str
    escalated_by: str
    priority: str
    steps: list[str]
    assessment: dict[str, Any] | None
    text: str


def note_marker(handoff_id: uuid.UUID) -> str:
    return f"Baton hand-off {handoff_id}"


def _assessment(ctx: HandoffContext) -> dict[str, Any] | None:
    if ctx.assessment_status != "ready" or not ctx.ai_assessment_data:
        return None
    return ctx.ai_assessment_data


def render(ctx: HandoffContext) -> Documentation:
    steps = step_lines(ctx.steps)[:MAX_STEPS_IN_NOTE]
    reason = (ctx.engineer_notes or ctx.escalation_reason or "").strip() or NO_REASON
    problem = ctx.problem_summary or "an active session"
    title = f"Escalated: {problem}"[:200]
    lines = [
        title,
        "",
        f"Problem: {ctx.problem_summary or 'Not recorded'}",
        f"Domain: {ctx.problem_domain or 'Not recorded'}",
        f"Escalated by: {ctx.handed_off_by_name}",
        f"Priority: {ctx.priority}",
        f"Reason: {reason}",
        "",
        f"Diagnostic steps ({len(steps)}):",
    ]
    lines += [f"{n}. {step}" for n, step in enumerate(steps, start=1)] or ["No diagnostic steps recorded."]
    assessment = _assessment(ctx)
    lines.append("")
    if assessment is not None:
        lines.append(f"AI assessment (confidence: {assessment.get('confidence', 'medium')}):")
        lines.append(str(assessment.get("summary_prose", "")))
        if assessment.get("what_we_know"):
            lines.append("What we know:")
            lines += [f"- {item}" for item in assessment["what_we_know"]]
        if assessment.get("likely_cause"):
            lines.append(f"Likely cause: {assessment['likely_cause']}")
        if assessment.get("suggested_steps"):
            lines.append("Suggested next steps:")
            lines += [f"- {item}" for item in assessment["suggested_steps"]]
    elif ctx.assessment_status == "pending":
        lines.append("AI assessment: still being written; see the hand-off in Baton.")
    else:
        lines.append("AI assessment: not available.")
    lines += ["", note_marker(ctx.handoff_id)]
    return Documentation(
        title=title,
        problem_summary=ctx.problem_summary,
        problem_domain=ctx.problem_domain,
        escalation_reason=reason,
        escalated_by=ctx.handed_off_by_name,
        priority=ctx.priority,
        steps=steps,
        assessment=assessment,
        text="\n".join(lines),
    )
