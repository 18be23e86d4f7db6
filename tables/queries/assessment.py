"""A hand-off's AI assessment: saved once, failed once, its status read by the workers and
by the web's retry (``server/handoffs/reassess.py``).

Updates pass ``use_auto_update=False`` and set ``updated_at`` from the database's clock,
as every other writer of these rows does (Piccolo's ``Table.update`` would take this
process's clock).
"""

from __future__ import annotations

import uuid
from typing import Any

from tables import db
from tables.handoffs import SessionHandoff
from tables.queries.clock import now
from tables.sessions import AiSession


async def save_assessment(*, handoff_id: uuid.UUID, prose: str, data: dict[str, Any]) -> uuid.UUID | None:
    """``ready`` with its prose and data, if still ``pending``; the session's id when saved."""
    rows = await db.run(
        SessionHandoff.update(
            {
                SessionHandoff.ai_assessment: prose,
                SessionHandoff.ai_assessment_data: data,
                SessionHandoff.assessment_status: "ready",
                SessionHandoff.updated_at: now(),
            },
            use_auto_update=False,
        )
        .where(SessionHandoff.id == handoff_id, SessionHandoff.assessment_status == "pending")
        .returning(SessionHandoff.session_id)
    )
    return rows[0]["session_id"] if rows else None


async def merge_suggested_steps(*, session_id: uuid.UUID, steps: list[str]) -> None:
    """The session's ``escalation_package`` gains ``suggested_next_steps``; its other keys
    (snapshot, intent, …) stay. Read under a row lock and written back, so no writer of
    the session can come in between: call it inside ``tables.db.transaction()``."""
    rows = await db.run(
        AiSession.select(AiSession.escalation_package)
        .where(AiSession.id == session_id)
        .lock_rows()
        .output(load_json=True)
    )
    if not rows:
        return
    package = rows[0]["escalation_package"]
    merged = {**(package if isinstance(package, dict) else {}), "suggested_next_steps": steps}
    await db.run(
        AiSession.update(
            {AiSession.escalation_package: merged, AiSession.updated_at: now()}, use_auto_update=False
        ).where(AiSession.id == session_id)
    )


async def mark_retry_pending(*, handoff_id: uuid.UUID, account_id: uuid.UUID) -> uuid.UUID | None:
    """A ``failed`` assessment back to ``pending`` (a retry); the session's id when it was
    failed, None otherwise (not this account's, or not failed)."""
    rows = await db.run(
        SessionHandoff.update(
            {SessionHandoff.assessment_status: "pending", SessionHandoff.updated_at: now()},
            use_auto_update=False,
        )
        .where(
            SessionHandoff.id == handoff_id,
            SessionHandoff.account_id == account_id,
            SessionHandoff.assessment_status == "failed",
        )
        .returning(SessionHandoff.session_id)
    )
    return rows[0]["session_id"] if rows else None


async def mark_assessment_failed(*, handoff_id: uuid.UUID) -> None:
    """``failed``, if still ``pending``; nothing else of the hand-off changes."""
    await db.run(
        SessionHandoff.update(
            {SessionHandoff.assessment_status: "failed", SessionHandoff.updated_at: now()},
            use_auto_update=False,
        ).where(SessionHandoff.id == handoff_id, SessionHandoff.assessment_status == "pending")
    )


async def assessment_status(*, handoff_id: uuid.UUID, account_id: uuid.UUID | None = None) -> str | None:
    """The hand-off's ``assessment_status`` (scoped to ``account_id`` when given); None
    when there is no such hand-off. On the current transaction when there is one."""
    query = SessionHandoff.select(SessionHandoff.assessment_status).where(SessionHandoff.id == handoff_id)
    if account_id is not None:
        query = query.where(SessionHandoff.account_id == account_id)
    rows = await db.run(query)
    return rows[0]["assessment_status"] if rows else None
