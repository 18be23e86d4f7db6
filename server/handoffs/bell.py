"""The in-app bell of an escalation: ``session.escalated`` rows, in the create transaction.

Who hears it (SPEC "Bell + chat"): the target alone when the escalation names one,
otherwise every eligible senior of the account except whoever escalated. One statement
picks them, writes their rows and records each as a ``bell`` delivery
(``tables.queries.notifications.ring_bell``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from tables.enums import SENIOR_ROLES
from tables.queries import notifications

ESCALATED_KIND = "session.escalated"


def bell_title(*, creator_name: str, problem_summary: str | None, psa_ticket_id: str | None) -> str:
    """Names the PSA ticket when there is one, so two similar escalations stay apart."""
    problem = problem_summary or "an active session"
    if psa_ticket_id:
        return f"{creator_name} escalated ticket #{psa_ticket_id}: {problem}"
    return f"{creator_name} escalated: {problem}"


async def ring_escalation_bell(
    conn: asyncpg.Connection,
    *,
    account_id: uuid.UUID,
    handoff_id: uuid.UUID,
    session_id: uuid.UUID,
    creator_id: uuid.UUID,
    creator_name: str,
    target_user_id: uuid.UUID | None,
    problem_summary: str | None,
    psa_ticket_id: str | None,
    engineer_notes: str | None,
    link: str | None,
    now: datetime,
) -> None:
    title = bell_title(
        creator_name=creator_name, problem_summary=problem_summary, psa_ticket_id=psa_ticket_id
    )
    body = (engineer_notes or "").strip() or "No reason provided."
    await notifications.ring_bell(
        conn,
        account_id=account_id,
        handoff_id=handoff_id,
        session_id=session_id,
        kind=ESCALATED_KIND,
        title=title,
        body=body,
        link=link,
        target_user_id=target_user_id,
        roles=SENIOR_ROLES,
        creator_id=creator_id,
        now=now,
    )
