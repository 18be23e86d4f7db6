"""What the e-mails say: the escalation's, the reminder's and a returned session's
subject and body.

SPEC "E-mail fan-out": subject ``New escalation: {problem_summary or "an active
session"}``; the body's intro, ``Reason``, ``Priority`` and a link to
``{FRONTEND_URL}/escalations`` when set. Plain text only: the message around it, and
every header, is ``actors/mail_message.py``'s.

Each copy then ends with its recipient's own pick-up link (``pickup_paragraph``, second
edition), added per copy by the composer: the body here is the same for everyone.
"""

from __future__ import annotations

from typing import Literal

from actors.context import HandoffContext
from actors.mail_headers import header_text
from settings import Settings

MailKind = Literal["escalation", "reminder", "returned"]

SUBJECT_MAX_CHARS = 200
NO_REASON = "No reason provided."
NO_NOTE = "No note given."
INTRO = "A teammate has escalated a session and is asking for help."
REMINDER_INTRO = "This escalation is still waiting for someone to pick it up."


def escalation_subject(ctx: HandoffContext) -> str:
    return header_text(f"New escalation: {ctx.problem_summary or 'an active session'}")[:SUBJECT_MAX_CHARS]


def escalation_body(ctx: HandoffContext, settings: Settings) -> str:
    notes = (ctx.engineer_notes or "").strip()
    body = f"{INTRO}\n\nReason: {notes or NO_REASON}\nPriority: {ctx.priority}"
    return body + _link(settings)


def reminder_subject(ctx: HandoffContext) -> str:
    return header_text(f"Still open: {ctx.problem_summary or 'an active session'}")[:SUBJECT_MAX_CHARS]


def reminder_body(ctx: HandoffContext, settings: Settings) -> str:
    notes = (ctx.engineer_notes or "").strip()
    body = (
        f"{REMINDER_INTRO} Its priority is now {ctx.priority}.\n\n"
        f"Reason: {notes or NO_REASON}\nPriority: {ctx.priority}"
    )
    return body + _link(settings)


def returned_subject(ctx: HandoffContext) -> str:
    return header_text(f"Returned to you: {ctx.problem_summary or 'an active session'}")[:SUBJECT_MAX_CHARS]


def returned_body(ctx: HandoffContext) -> str:
    """To the technician a senior gave the session back to (outcome ``returned``)."""
    note = (ctx.resolution_note or "").strip()
    who = ctx.resolved_by_name or "A senior"
    return (
        f"{who} returned this session to you; it is yours again.\n\n"
        f"Problem: {ctx.problem_summary or 'an active session'}\n"
        f"Note: {note or NO_NOTE}"
    )


def _link(settings: Settings) -> str:
    return f"\n\n{settings.frontend_url.rstrip('/')}/escalations" if settings.frontend_url else ""


PICKUP_INTRO = "Pick it up from here (this link is yours alone and works for 24 hours):"


def pickup_paragraph(url: str) -> str:
    """The last lines of a copy: its recipient's pick-up link, on a line of its own."""
    return f"\n\n{PICKUP_INTRO}\n{url}"


def subject_and_body(ctx: HandoffContext, kind: MailKind, settings: Settings) -> tuple[str, str]:
    if kind == "reminder":
        return reminder_subject(ctx), reminder_body(ctx, settings)
    if kind == "returned":
        return returned_subject(ctx), returned_body(ctx)
    return escalation_subject(ctx), escalation_body(ctx, settings)
