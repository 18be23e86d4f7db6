"""A hand-off as the API returns it, from its row and the names of the people on it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from server.problems import Problem
from server.schemas.handoffs import Assessment, HandoffOut, Person, PsaNote
from tables import db

# The columns every hand-off answer is built from; "h" is session_handoffs.
HANDOFF_COLUMNS = """
    h.id, h.session_id, h.intent, h.state, h.priority, h.engineer_notes, h.snapshot,
    h.source_branch_id, h.target_user_id, h.handed_off_by, h.claimed_by, h.claimed_at,
    h.created_at, h.assessment_status, h.ai_assessment, h.ai_assessment_data,
    h.psa_note_pushed, h.psa_note_id
"""

GET_HANDOFF = f"""
SELECT {HANDOFF_COLUMNS}, by_user.name AS handed_off_by_name, claimer.name AS claimed_by_name
FROM session_handoffs AS h
JOIN users AS by_user ON by_user.id = h.handed_off_by
LEFT JOIN users AS claimer ON claimer.id = h.claimed_by
WHERE h.id = $1 AND h.account_id = $2
"""


def _assessment(row: Mapping[str, Any]) -> Assessment:
    data = db.load_json(row["ai_assessment_data"]) or {}
    return Assessment(
        status=row["assessment_status"],
        summary_prose=row["ai_assessment"] or data.get("summary_prose"),
        what_we_know=list(data.get("what_we_know") or []),
        likely_cause=data.get("likely_cause"),
        suggested_steps=list(data.get("suggested_steps") or []),
        confidence=data.get("confidence"),
    )


def handoff_from_row(
    row: Mapping[str, Any], *, handed_off_by_name: str, claimed_by_name: str | None
) -> HandoffOut:
    """``row`` holds ``HANDOFF_COLUMNS``; the names come from wherever the caller has them."""
    claimed_by = row["claimed_by"]
    return HandoffOut(
        id=row["id"],
        session_id=row["session_id"],
        intent=row["intent"],
        state=row["state"],
        priority=row["priority"],
        engineer_notes=row["engineer_notes"],
        snapshot=db.load_json(row["snapshot"]) or {},
        source_branch_id=row["source_branch_id"],
        target_user_id=row["target_user_id"],
        handed_off_by=Person(id=row["handed_off_by"], name=handed_off_by_name),
        claimed_by=None if claimed_by is None else Person(id=claimed_by, name=claimed_by_name or ""),
        claimed_at=row["claimed_at"],
        created_at=row["created_at"],
        assessment=_assessment(row),
        psa=PsaNote(pushed=row["psa_note_pushed"], note_id=row["psa_note_id"]),
    )


async def fetch_handoff(
    conn: asyncpg.Connection, account_id: uuid.UUID, handoff_id: uuid.UUID
) -> HandoffOut | None:
    row = await conn.fetchrow(GET_HANDOFF, handoff_id, account_id)
    if row is None:
        return None
    return handoff_from_row(
        row, handed_off_by_name=row["handed_off_by_name"], claimed_by_name=row["claimed_by_name"]
    )


def handoff_not_found() -> Problem:
    return Problem(404, "Hand-off not found.")


async def get_handoff(account_id: uuid.UUID, handoff_id: uuid.UUID) -> HandoffOut:
    """The hand-off of ``account_id``; 404 for a missing one or another account's."""
    async with db.connection() as conn:
        handoff = await fetch_handoff(conn, account_id, handoff_id)
    if handoff is None:
        raise handoff_not_found()
    return handoff
