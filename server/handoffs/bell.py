"""The in-app bell of an escalation: ``session.escalated`` rows, in the create transaction.

Who hears it (SPEC "Bell + chat"): the target alone when the escalation names one,
otherwise every eligible senior of the account except whoever escalated.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from tables.enums import SENIOR_ROLES

ESCALATED_KIND = "session.escalated"

# One statement picks the recipients, writes their rows, and records each as a ``bell``
# delivery (sent at birth: the row is the delivery). $7 is the target (or NULL).
INSERT_BELL_ROWS = """
WITH rung AS (
    INSERT INTO app_notifications
        (id, account_id, user_id, kind, title, body, link, handoff_id, session_id, created_at)
    SELECT gen_random_uuid(), $1, u.id, $2, $3, $4, $5, $6, $8, $9
    FROM users AS u
    WHERE u.account_id = $1
      AND u.is_active AND u.deleted_at IS NULL
      AND CASE
            WHEN $7::uuid IS NOT NULL THEN u.id = $7::uuid
            ELSE u.account_role = ANY($10::text[]) AND u.id <> $11
          END
    RETURNING user_id
)
INSERT INTO deliveries
    (id, account_id, handoff_id, channel, recipient, status, attempts, sent_at, created_at, updated_at)
SELECT gen_random_uuid(), $1, $6, 'bell', user_id::text, 'sent', 1, $9, $9, $9
FROM rung
"""


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
    await conn.execute(
        INSERT_BELL_ROWS,
        account_id,
        ESCALATED_KIND,
        title,
        body,
        link,
        handoff_id,
        target_user_id,
        session_id,
        now,
        list(SENIOR_ROLES),
        creator_id,
    )
