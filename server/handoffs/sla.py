"""An escalation's ``sla`` on the wire, from the columns the tier engine keeps.

Without a policy (the built-in default) there is no SLA, but there are tiers all the
same: tier 0 at create and, once, the reminder as tier 1; ``last_tier`` says which went
last, from ``reminded_at``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

import msgspec

from server.schemas.handoffs import LastTier, Sla
from tables.states import REMINDED_INTENT
from tables.tier_schedule import AFTER_RELEASE_TIER, AT_CREATE_TIER, FIRST_ROUND


def sla_of(
    *,
    intent: str,
    created_at: datetime,
    policy_id: uuid.UUID | None,
    claim_due_at: datetime | None,
    breached_at: datetime | None,
    last_tier: dict[str, Any] | None,
    reminded_at: datetime | None,
) -> Sla | None:
    if intent != REMINDED_INTENT:
        return None
    last: LastTier | None
    if last_tier is not None:
        last = msgspec.convert(last_tier, LastTier)
    elif policy_id is not None:
        last = None  # tier 0 is on its way (the engine fires it right after the commit)
    elif reminded_at is not None:
        last = LastTier(tier=AFTER_RELEASE_TIER, round=FIRST_ROUND, at=reminded_at)
    else:
        last = LastTier(tier=AT_CREATE_TIER, round=FIRST_ROUND, at=created_at)
    return Sla(policy_id=policy_id, claim_due_at=claim_due_at, breached_at=breached_at, last_tier=last)


class SlaColumns(Protocol):
    """The columns an answer's ``sla`` is read from (a hand-off row, a queue row)."""

    @property
    def intent(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def policy_id(self) -> uuid.UUID | None: ...
    @property
    def claim_due_at(self) -> datetime | None: ...
    @property
    def breached_at(self) -> datetime | None: ...
    @property
    def last_tier(self) -> dict[str, Any] | None: ...
    @property
    def reminded_at(self) -> datetime | None: ...


def sla_of_row(row: SlaColumns) -> Sla | None:
    return sla_of(
        intent=row.intent,
        created_at=row.created_at,
        policy_id=row.policy_id,
        claim_due_at=row.claim_due_at,
        breached_at=row.breached_at,
        last_tier=row.last_tier,
        reminded_at=row.reminded_at,
    )
