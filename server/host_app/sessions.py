"""``PUT /sessions/{id}`` and ``GET /sessions/{id}``: the sessions Baton hands off.

A PUT replaces the session's steps, branches and messages in one transaction, so a
reader never sees half of an update; ``step_count`` is always the number of steps Baton
holds. Baton's own fields (``escalation_*``, ``handoff_count``) are never written here.
The writes are tables/queries/sessions.py's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec

from server.host_app.upsert import not_found, require_in_account
from server.problems import Problem
from server.schemas.host_app import BranchOut, SessionOut, SessionPut, StepOut
from tables import db
from tables.queries import sessions
from tables.queries.session_steps import StepRecord, session_steps

BRANCHES_PKEY = "session_branches_pkey"

GET_SESSION = """
SELECT id, user_id, team_id, status, problem_summary, problem_domain, step_count, confidence_tier,
       is_branching, active_branch_id, escalation_reason, escalated_to_id, escalation_package,
       handoff_count, psa_ticket_id, psa_connection_id, conversation_messages, created_at, updated_at
FROM ai_sessions
WHERE id = $1 AND account_id = $2
"""
GET_BRANCHES = """
SELECT id, label, status, status_reason, parent_branch_id, branch_order
FROM session_branches WHERE session_id = $1 ORDER BY branch_order, id
"""


def _session_out(
    row: Mapping[str, Any], steps: list[StepRecord], branches: list[asyncpg.Record]
) -> SessionOut:
    fields = dict(row)
    fields["escalation_package"] = db.load_json(row["escalation_package"])
    fields["conversation_messages"] = db.load_json(row["conversation_messages"]) or []
    return SessionOut(
        **fields,
        steps=[StepOut(**msgspec.structs.asdict(step)) for step in steps],
        branches=[BranchOut(**dict(branch)) for branch in branches],
    )


async def _fetch_session(
    conn: asyncpg.Connection, account_id: uuid.UUID, session_id: uuid.UUID
) -> SessionOut:
    # One after the other: a connection runs one query at a time.
    row = await conn.fetchrow(GET_SESSION, session_id, account_id)
    if row is None:
        raise Problem(404, "Session not found.")
    steps = await session_steps(session_id=session_id)  # on the caller's transaction
    branches = await conn.fetch(GET_BRANCHES, session_id)
    return _session_out(row, steps, branches)


async def get_session(account_id: uuid.UUID, session_id: uuid.UUID) -> SessionOut:
    # A transaction, not a bare connection: the steps' builder query runs on it.
    async with db.transaction() as conn:
        return await _fetch_session(conn, account_id, session_id)


def _session_write(body: SessionPut) -> sessions.SessionWrite:
    return sessions.SessionWrite(
        user_id=body.user_id,
        team_id=body.team_id,
        status=body.status,
        problem_summary=body.problem_summary,
        problem_domain=body.problem_domain,
        step_count=len(body.steps),  # always the number of steps Baton holds
        confidence_tier=body.confidence_tier,
        is_branching=body.is_branching,
        active_branch_id=body.active_branch_id,
        psa_ticket_id=body.psa_ticket_id,
        psa_connection_id=body.psa_connection_id,
        conversation_messages=db.dump_json(body.conversation_messages),
    )


def _check_branch_ids(body: SessionPut) -> None:
    seen: set[uuid.UUID] = set()
    for branch in body.branches:
        if branch.id in seen:
            raise Problem(422, f"branch id {branch.id} appears twice in branches.")
        seen.add(branch.id)


async def put_session(
    account_id: uuid.UUID, session_id: uuid.UUID, body: SessionPut
) -> tuple[SessionOut, bool]:
    """(the session as stored, created?)."""
    _check_branch_ids(body)
    try:
        async with db.transaction() as conn:
            await require_in_account("users", body.user_id, account_id, field="user_id")
            await require_in_account("teams", body.team_id, account_id, field="team_id")
            await require_in_account(
                "psa_connections", body.psa_connection_id, account_id, field="psa_connection_id"
            )
            created = await sessions.upsert_session(
                account_id=account_id, session_id=session_id, session=_session_write(body)
            )
            if created is None:
                raise not_found("Session")
            await sessions.replace_steps(
                conn,
                session_id=session_id,
                steps=[
                    sessions.StepWrite(
                        step_order=step.step_order,
                        content=db.dump_json(step.content),
                        selected_option=step.selected_option,
                        free_text_input=step.free_text_input,
                        was_skipped=step.was_skipped,
                    )
                    for step in body.steps
                ],
            )
            await sessions.replace_branches(
                conn,
                session_id=session_id,
                branches=[
                    msgspec.convert(branch, sessions.BranchWrite, from_attributes=True)
                    for branch in body.branches
                ],
            )
            return await _fetch_session(conn, account_id, session_id), created
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == BRANCHES_PKEY:
            raise Problem(
                422, "A branch id is already used by another session; branch ids are global."
            ) from None
        raise
