"""``PUT /sessions/{id}`` and ``GET /sessions/{id}``: the sessions Baton hands off.

A PUT replaces the session's steps, branches and messages in one transaction, so a
reader never sees half of an update; ``step_count`` is always the number of steps Baton
holds. Baton's own fields (``escalation_*``, ``handoff_count``) are never written here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec

from server.host_app.upsert import CREATED, require_in_account, upsert_in_account
from server.problems import Problem
from server.schemas.host_app import BranchOut, SessionOut, SessionPut, StepOut
from tables import db
from tables.queries.session_steps import StepRecord, session_steps

# $5 (status) NULL keeps the stored status on update and means 'active' on insert.
UPSERT_SESSION = f"""
INSERT INTO ai_sessions (
    id, account_id, team_id, user_id, status, problem_summary, problem_domain, step_count,
    confidence_tier, is_branching, active_branch_id, psa_ticket_id, psa_connection_id,
    conversation_messages, created_at, updated_at
) VALUES (
    $1, $2, $3, $4, COALESCE($5::varchar, 'active'), $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb,
    now(), now()
)
ON CONFLICT (id) DO UPDATE
SET team_id = EXCLUDED.team_id, user_id = EXCLUDED.user_id,
    status = COALESCE($5::varchar, ai_sessions.status),
    problem_summary = EXCLUDED.problem_summary, problem_domain = EXCLUDED.problem_domain,
    step_count = EXCLUDED.step_count, confidence_tier = EXCLUDED.confidence_tier,
    is_branching = EXCLUDED.is_branching, active_branch_id = EXCLUDED.active_branch_id,
    psa_ticket_id = EXCLUDED.psa_ticket_id, psa_connection_id = EXCLUDED.psa_connection_id,
    conversation_messages = EXCLUDED.conversation_messages, updated_at = now()
WHERE ai_sessions.account_id = EXCLUDED.account_id
RETURNING {CREATED}
"""

DELETE_STEPS = "DELETE FROM session_steps WHERE session_id = $1"
INSERT_STEPS = """
INSERT INTO session_steps (id, session_id, step_order, content, selected_option, free_text_input, was_skipped)
SELECT gen_random_uuid(), $1, s.step_order, s.content::jsonb, s.selected_option, s.free_text_input,
       s.was_skipped
FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::bool[])
     AS s(step_order, content, selected_option, free_text_input, was_skipped)
"""

DELETE_BRANCHES = "DELETE FROM session_branches WHERE session_id = $1"
INSERT_BRANCHES = """
INSERT INTO session_branches (id, session_id, label, status, status_reason, parent_branch_id, branch_order)
SELECT b.id, $1, b.label, b.status, b.status_reason, b.parent_branch_id, b.branch_order
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::int[])
     AS b(id, label, status, status_reason, parent_branch_id, branch_order)
"""
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


def _check_branch_ids(body: SessionPut) -> None:
    seen: set[uuid.UUID] = set()
    for branch in body.branches:
        if branch.id in seen:
            raise Problem(422, f"branch id {branch.id} appears twice in branches.")
        seen.add(branch.id)


async def _replace_children(conn: asyncpg.Connection, session_id: uuid.UUID, body: SessionPut) -> None:
    await conn.execute(DELETE_STEPS, session_id)
    if body.steps:
        await conn.execute(
            INSERT_STEPS,
            session_id,
            [step.step_order for step in body.steps],
            [db.dump_json(step.content) for step in body.steps],
            [step.selected_option for step in body.steps],
            [step.free_text_input for step in body.steps],
            [step.was_skipped for step in body.steps],
        )
    await conn.execute(DELETE_BRANCHES, session_id)
    if body.branches:
        await conn.execute(
            INSERT_BRANCHES,
            session_id,
            [branch.id for branch in body.branches],
            [branch.label for branch in body.branches],
            [branch.status for branch in body.branches],
            [branch.status_reason for branch in body.branches],
            [branch.parent_branch_id for branch in body.branches],
            [branch.branch_order for branch in body.branches],
        )


async def put_session(
    account_id: uuid.UUID, session_id: uuid.UUID, body: SessionPut
) -> tuple[SessionOut, bool]:
    """(the session as stored, created?)."""
    _check_branch_ids(body)
    try:
        async with db.transaction() as conn:
            await require_in_account(conn, "users", body.user_id, account_id, field="user_id")
            await require_in_account(conn, "teams", body.team_id, account_id, field="team_id")
            await require_in_account(
                conn, "psa_connections", body.psa_connection_id, account_id, field="psa_connection_id"
            )
            _, created = await upsert_in_account(
                conn,
                UPSERT_SESSION,
                session_id,
                account_id,
                body.team_id,
                body.user_id,
                body.status,
                body.problem_summary,
                body.problem_domain,
                len(body.steps),
                body.confidence_tier,
                body.is_branching,
                body.active_branch_id,
                body.psa_ticket_id,
                body.psa_connection_id,
                db.dump_json(body.conversation_messages),
                what="Session",
            )
            await _replace_children(conn, session_id, body)
            return await _fetch_session(conn, account_id, session_id), created
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == BRANCHES_PKEY:
            raise Problem(
                422, "A branch id is already used by another session; branch ids are global."
            ) from None
        raise
