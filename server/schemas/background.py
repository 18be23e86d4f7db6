"""What the background work shows on the wire: briefing, PSA push, deliveries, the bell,
and the legacy escalate shim."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from server.schemas.bounds import EngineerNotes
from tables.enums import DEFAULT_PRIORITY, DeliveryStatus, Priority, PsaPushStatus


class BriefingOut(msgspec.Struct, kw_only=True):
    handoff_id: uuid.UUID
    session_id: uuid.UUID
    status: Literal["ready", "pending"]
    briefing: str | None


class PsaPushOut(msgspec.Struct, kw_only=True):
    handoff_id: uuid.UUID
    psa_push_status: PsaPushStatus
    psa_push_error: str | None
    member_mapping_warning: str | None
    psa_note_id: str | None


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    channel: str
    recipient: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Which message it is (the ledger's key): ``notify`` for the create's, the reminder's
    # and the PSA note; ``tier`` for an escalation policy's tier ``tier`` of ``round``,
    # after ``release_count`` releases.
    purpose: str = "notify"
    release_count: int = 0
    tier: int = 0
    round: int = 1


class DeliveriesOut(msgspec.Struct, kw_only=True):
    handoff_id: uuid.UUID
    items: list[DeliveryOut]


class NotificationOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    title: str
    body: str
    link: str | None
    handoff_id: uuid.UUID | None
    session_id: uuid.UUID | None
    read_at: datetime | None
    created_at: datetime


class NotificationsPage(msgspec.Struct, kw_only=True):
    items: list[NotificationOut]
    unread_count: int
    next_cursor: str | None


class EscalateRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The legacy ``POST /sessions/{id}/escalate`` body: an escalation's fields."""

    engineer_notes: EngineerNotes | None = None
    priority: Priority = DEFAULT_PRIORITY
    target_user_id: uuid.UUID | None = None


class DocumentationOut(msgspec.Struct, kw_only=True):
    """The session documentation, as pushed to the PSA ticket (``text`` is the note)."""

    title: str
    problem_summary: str | None
    problem_domain: str | None
    escalation_reason: str
    escalated_by: str
    priority: str
    steps: list[str]
    assessment: dict[str, Any] | None
    text: str


class EscalateOut(msgspec.Struct, kw_only=True):
    handoff_id: uuid.UUID
    documentation: DocumentationOut | None
    psa_push_status: PsaPushStatus
    psa_push_error: str | None
    member_mapping_warning: str | None
