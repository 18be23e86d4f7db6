"""The inbox's event types, with exactly the fields SPEC gives them.

On the wire an event is ``{"id": "<stream id>", "type": "<event type>", ...fields}``; the
structs here carry the fields and the type tag, the id is the Redis stream's (see frames).
Ids are strings (UUIDs as ``str``, timestamps ISO 8601) so the wire is exactly what the
publisher passed.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Intent = Literal["park", "escalate"]
Priority = Literal["low", "normal", "high", "urgent"]
Outcome = Literal["resolved", "returned", "withdrawn"]


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every inbox event: the subclass's ``tag`` is its wire ``type``."""


class HandoffCreated(_Event, frozen=True, tag="handoff_created"):
    handoff_id: str
    session_id: str
    intent: Intent
    priority: Priority
    engineer_notes: str | None
    problem_summary: str | None
    created_at: str


class HandoffAssessmentReady(_Event, frozen=True, tag="handoff_assessment_ready"):
    handoff_id: str
    session_id: str
    has_assessment: bool


class HandoffClaimed(_Event, frozen=True, tag="handoff_claimed"):
    handoff_id: str
    session_id: str
    claimed_by_id: str
    claimed_by_name: str
    claimed_at: str


class HandoffReleased(_Event, frozen=True, tag="handoff_released"):
    handoff_id: str
    session_id: str


class HandoffSuperseded(_Event, frozen=True, tag="handoff_superseded"):
    handoff_id: str
    session_id: str
    superseded_by: str | None = None


class HandoffBriefingReady(_Event, frozen=True, tag="handoff_briefing_ready"):
    handoff_id: str
    session_id: str


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str


class HandoffTierNotified(_Event, frozen=True, tag="handoff_tier_notified"):
    """A tier of the hand-off's escalation policy went out (tiers from 0, rounds from 1)."""

    handoff_id: str
    session_id: str
    tier: int
    round: int
    recipients: list[Recipient]


class HandoffSlaBreached(_Event, frozen=True, tag="handoff_sla_breached"):
    """Nobody claimed it by ``claim_due_at``: recorded once, never cleared."""

    handoff_id: str
    session_id: str
    claim_due_at: str


class HandoffResolved(_Event, frozen=True, tag="handoff_resolved"):
    """``POST /handoffs/{id}/resolve``: the hand-off is final (``resolved``, ``returned``
    to its technician, or ``withdrawn`` by them)."""

    handoff_id: str
    session_id: str
    outcome: Outcome
    resolved_by_id: str
    resolved_by_name: str


Event = (
    HandoffCreated
    | HandoffAssessmentReady
    | HandoffClaimed
    | HandoffReleased
    | HandoffSuperseded
    | HandoffBriefingReady
    | HandoffTierNotified
    | HandoffSlaBreached
    | HandoffResolved
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def event_type(event: Event) -> str:
    """The event's wire ``type``, e.g. ``"handoff_assessment_ready"``."""
    tag: str = type(event).__struct_config__.tag  # type: ignore[assignment]  # every Event has one
    return tag


def encode_event(event: Event) -> bytes:
    """The event's JSON without an id: ``{"type": ..., ...fields}``."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> Event:
    """An event from its JSON (an ``id`` key, as in a frame, is ignored)."""
    return _decoder.decode(data)
