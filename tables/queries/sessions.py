"""Sessions as the host app writes them (``PUT /sessions/{id}``): the session row, its steps
and its branches, replaced whole. The builder (host-app sync is off the click path);
the caller runs them in one ``db.transaction()``, so a reader never sees half a PUT.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec

from tables import db
from tables.enums import SessionStatus
from tables.queries.tenancy import upsert_in_account
from tables.sessions import AiSession, SessionBranch, SessionStep

# A new session starts here when the host app names no status.
NEW_SESSION_STATUS: SessionStatus = "active"


class SessionWrite(msgspec.Struct, frozen=True, kw_only=True):
    """The host app's fields of ``ai_sessions``; Baton's own (``escalation_*``,
    ``handoff_count``) are never written from here. ``status`` None keeps the stored one."""

    user_id: uuid.UUID
    team_id: uuid.UUID | None
    status: SessionStatus | None
    problem_summary: str | None
    problem_domain: str | None
    step_count: int
    confidence_tier: str | None
    is_branching: bool
    active_branch_id: uuid.UUID | None
    psa_ticket_id: str | None
    psa_connection_id: uuid.UUID | None
    conversation_messages: str  # JSON


class StepWrite(msgspec.Struct, frozen=True, kw_only=True):
    step_order: int
    content: str  # JSON: {"text": …}
    selected_option: str | None
    free_text_input: str | None
    was_skipped: bool


class BranchWrite(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    label: str
    status: str
    status_reason: str | None
    parent_branch_id: uuid.UUID | None
    branch_order: int


async def upsert_session(
    *, account_id: uuid.UUID, session_id: uuid.UUID, session: SessionWrite
) -> bool | None:
    """Created? None when ``session_id`` is another account's."""
    s = AiSession
    values = {getattr(s, name): getattr(session, name) for name in SessionWrite.__struct_fields__}
    status = values.pop(s.status)
    if status is not None:
        values[s.status] = status
    written = await upsert_in_account(
        s,
        row_id=session_id,
        account_id=account_id,
        values=values,
        returning=[s.id],
        insert_values={s.status: status or NEW_SESSION_STATUS},
    )
    return None if written is None else written[1]


async def replace_steps(*, session_id: uuid.UUID, steps: Sequence[StepWrite]) -> None:
    await db.run(SessionStep.delete().where(SessionStep.session_id == session_id))
    if steps:
        rows = [
            SessionStep(id=uuid.uuid4(), session_id=session_id, **msgspec.structs.asdict(step))
            for step in steps
        ]
        await db.run(SessionStep.insert(*rows))


async def replace_branches(*, session_id: uuid.UUID, branches: Sequence[BranchWrite]) -> None:
    """Raises ``asyncpg.UniqueViolationError`` (``session_branches_pkey``) when a branch id
    is another session's: branch ids are global."""
    await db.run(SessionBranch.delete().where(SessionBranch.session_id == session_id))
    if branches:
        rows = [SessionBranch(session_id=session_id, **msgspec.structs.asdict(branch)) for branch in branches]
        await db.run(SessionBranch.insert(*rows))
