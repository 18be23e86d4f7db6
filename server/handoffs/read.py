"""A hand-off as the API returns it, from its row (tables.queries.handoffs.HandoffRow)."""

from __future__ import annotations

import uuid

from server.handoffs.sla import sla_of_row
from server.problems import Problem
from server.schemas.handoffs import Assessment, HandoffOut, Person, PsaNote, Resolution
from tables.queries import handoffs
from tables.queries.handoffs import HandoffRow


def _assessment(row: HandoffRow) -> Assessment:
    data = row.ai_assessment_data or {}
    return Assessment(
        status=row.assessment_status,
        summary_prose=row.ai_assessment or data.get("summary_prose"),
        what_we_know=list(data.get("what_we_know") or []),
        likely_cause=data.get("likely_cause"),
        suggested_steps=list(data.get("suggested_steps") or []),
        confidence=data.get("confidence"),
    )


def _resolution(row: HandoffRow) -> Resolution | None:
    if row.resolution_outcome is None or row.resolved_by is None or row.resolved_at is None:
        return None
    return Resolution(
        outcome=row.resolution_outcome,
        note=row.resolution_note,
        by=Person(id=row.resolved_by, name=row.resolved_by_name or ""),
        at=row.resolved_at,
    )


def handoff_out(row: HandoffRow) -> HandoffOut:
    claimed_by = row.claimed_by
    return HandoffOut(
        id=row.id,
        session_id=row.session_id,
        intent=row.intent,
        state=row.state,
        priority=row.priority,
        engineer_notes=row.engineer_notes,
        snapshot=row.snapshot,
        source_branch_id=row.source_branch_id,
        target_user_id=row.target_user_id,
        handed_off_by=Person(id=row.handed_off_by, name=row.handed_off_by_name),
        claimed_by=None if claimed_by is None else Person(id=claimed_by, name=row.claimed_by_name or ""),
        claimed_at=row.claimed_at,
        created_at=row.created_at,
        assessment=_assessment(row),
        psa=PsaNote(pushed=row.psa_note_pushed, note_id=row.psa_note_id),
        sla=sla_of_row(row),
        resolution=_resolution(row),
    )


def handoff_not_found() -> Problem:
    return Problem(404, "Hand-off not found.")


async def get_handoff(account_id: uuid.UUID, handoff_id: uuid.UUID) -> HandoffOut:
    """The hand-off of ``account_id``; 404 for a missing one or another account's."""
    row = await handoffs.get(account_id=account_id, handoff_id=handoff_id)
    if row is None:
        raise handoff_not_found()
    return handoff_out(row)
