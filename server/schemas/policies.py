"""What the escalation-policy endpoints answer. The body a ``PUT`` takes is
``tables.policy_shapes.PolicyPut``: the same structs the JSONB columns hold."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from tables.policy_shapes import BusinessHours, SlaClaim, Tier


class PolicyOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    team_id: uuid.UUID | None
    tiers: list[Tier]
    repeat: int
    sla_claim_s: SlaClaim | None
    business_hours: BusinessHours | None
    created_at: datetime
    updated_at: datetime


class PoliciesOut(msgspec.Struct, kw_only=True):
    items: list[PolicyOut]
