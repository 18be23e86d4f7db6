"""Hand-offs on the wire: the create body, the hand-off as returned everywhere, the queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from server.schemas.bounds import EngineerNotes, ResolutionNote
from tables.enums import DEFAULT_PRIORITY, AssessmentStatus, HandoffState, Intent, Priority, ResolveOutcome


class HandoffCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    intent: Intent
    engineer_notes: EngineerNotes | None = None
    priority: Priority = DEFAULT_PRIORITY
    target_user_id: uuid.UUID | None = None


class Person(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str


class Assessment(msgspec.Struct, kw_only=True):
    """The AI assessment; empty while ``status`` is ``pending`` or ``not_applicable``."""

    status: AssessmentStatus
    summary_prose: str | None = None
    what_we_know: list[str] = []
    likely_cause: str | None = None
    suggested_steps: list[str] = []
    confidence: str | None = None


class LastTier(msgspec.Struct, kw_only=True):
    tier: int  # from 0, the notification at create
    round: int  # from 1
    at: datetime  # when it was scheduled to go out


class Sla(msgspec.Struct, kw_only=True):
    """An escalation's policy clock (SPEC second edition); null on a park. Without a
    policy (the built-in default) ``policy_id`` and ``claim_due_at`` are null."""

    policy_id: uuid.UUID | None
    claim_due_at: datetime | None
    breached_at: datetime | None
    last_tier: LastTier | None


class PsaNote(msgspec.Struct, kw_only=True):
    pushed: bool = False
    note_id: str | None = None


class Resolution(msgspec.Struct, kw_only=True):
    """How a resolved hand-off ended (``POST /handoffs/{id}/resolve``)."""

    outcome: ResolveOutcome
    note: str | None
    by: Person
    at: datetime


class ResolveRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    outcome: ResolveOutcome
    note: ResolutionNote | None = None


class HandoffOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    session_id: uuid.UUID
    intent: Intent
    state: HandoffState
    priority: Priority
    engineer_notes: str | None
    snapshot: dict[str, Any]
    source_branch_id: uuid.UUID | None
    target_user_id: uuid.UUID | None
    handed_off_by: Person
    claimed_by: Person | None
    claimed_at: datetime | None
    created_at: datetime
    assessment: Assessment
    psa: PsaNote
    sla: Sla | None = None
    resolution: Resolution | None = None  # null until it is resolved


class QueueItem(msgspec.Struct, kw_only=True):
    handoff_id: uuid.UUID
    session_id: uuid.UUID
    intent: Intent
    problem_summary: str | None
    problem_domain: str | None
    priority: Priority
    engineer_notes: str | None
    created_at: datetime
    # Always null in a queue of open hand-offs; kept so a card has one shape everywhere.
    claimed_by: Person | None = None
    claimed_at: datetime | None = None
    sla: Sla | None = None


class QueuePage(msgspec.Struct, kw_only=True):
    items: list[QueueItem]
    next_cursor: str | None
