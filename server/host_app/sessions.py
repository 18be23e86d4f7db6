"""``PUT /sessions/{id}`` and ``GET /sessions/{id}``: the sessions Baton hands off.

A PUT replaces the session's steps, branches and messages in one transaction, so a
reader never sees half of an update; ``step_count`` is always the number of steps Baton
holds. Baton's own fields (``escalation_*``, ``handoff_count``) are never written here.
The writes are tables/queries/sessions.py's.
"""

from __future__ import annotations

import uuid
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


def _session_out(
    fields: dict[str, Any], steps: list[StepRecord], branches: list[sessions.Branch]
) -> SessionOut:
    return SessionOut(
        **fields,
        steps=[StepOut(**msgspec.structs.asdict(step)) for step in steps],
        branches=[BranchOut(**msgspec.structs.asdict(branch)) for branch in branches],
    )


async def _fetch_session(account_id: uuid.UUID, session_id: uuid.UUID) -> SessionOut:
    """The session as stored; on the caller's transaction when there is one (a PUT's)."""
    fields = await sessions.session_fields(account_id=account_id, session_id=session_id)
    if fields is None:
        raise Problem(404, "Session not found.")
    steps = await session_steps(session_id=session_id)
    branches = await sessions.session_branches(session_id=session_id)
    return _session_out(fields, steps, branches)


async def get_session(account_id: uuid.UUID, session_id: uuid.UUID) -> SessionOut:
    # One transaction: the three reads see one state of the session.
    async with db.transaction():
        return await _fetch_session(account_id, session_id)


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
                    msgspec.convert(branch, sessions.Branch, from_attributes=True) for branch in body.branches
                ],
            )
            return await _fetch_session(account_id, session_id), created
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == BRANCHES_PKEY:
            raise Problem(
                422, "A branch id is already used by another session; branch ids are global."
            ) from None
        raise
