"""An escalation policy's shape: the API's body, the JSONB columns, and the copy a
hand-off keeps (SPEC second edition, "Escalation policies and SLA").

The types bound every value (decoding refuses the rest with the field named); the rules
types cannot say (tier 0 first, windows in order, users of the account) are
``server/policies/validate.py``'s. The tier engine decodes a hand-off's copy with the
same structs (``PolicyCopy``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final, Literal

import msgspec

from tables.enums import Role
from tables.limits import NAME_MAX

TierChannel = Literal["email", "slack", "teams", "bell"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

TIERS_MAX = 10
REPEAT_MAX = 3
# A tier waits at least a second (the engine's resolution) and at most a week.
AFTER_S_MIN = 1
AFTER_S_MAX = 7 * 24 * 3600
SLA_CLAIM_S_MIN = 1
SLA_CLAIM_S_MAX = 30 * 24 * 3600
USER_IDS_MAX = 100
WINDOWS_PER_DAY_MAX = 6
HOLIDAYS_MAX = 366
TIMEZONE_MAX = 64

WallClock = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Window = tuple[WallClock, WallClock]
HolidayDate = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Notify(_In, kw_only=True):
    """Who a tier notifies: the eligible users in ``user_ids``, and those matching
    ``roles`` and ``team_id`` (both, when both are given). Never the creator."""

    roles: Annotated[list[Role], msgspec.Meta(max_length=4)] | None = None
    team_id: uuid.UUID | None = None
    user_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=USER_IDS_MAX)] | None = None

    def names_anyone(self) -> bool:
        return bool(self.roles) or self.team_id is not None or bool(self.user_ids)


class Tier(_In, kw_only=True):
    after_s: Annotated[int, msgspec.Meta(ge=0, le=AFTER_S_MAX)]
    channels: Annotated[list[TierChannel], msgspec.Meta(min_length=1, max_length=4)]
    notify: Notify = msgspec.field(default_factory=Notify)
    raise_priority: bool = False


class SlaClaim(_In, kw_only=True):
    """Seconds from create (or release) to the claim, by priority; a priority left out has no SLA."""

    urgent: Annotated[int, msgspec.Meta(ge=SLA_CLAIM_S_MIN, le=SLA_CLAIM_S_MAX)] | None = None
    high: Annotated[int, msgspec.Meta(ge=SLA_CLAIM_S_MIN, le=SLA_CLAIM_S_MAX)] | None = None
    normal: Annotated[int, msgspec.Meta(ge=SLA_CLAIM_S_MIN, le=SLA_CLAIM_S_MAX)] | None = None
    low: Annotated[int, msgspec.Meta(ge=SLA_CLAIM_S_MIN, le=SLA_CLAIM_S_MAX)] | None = None

    def for_priority(self, priority: str) -> int | None:
        value = getattr(self, priority, None)
        return value if isinstance(value, int) else None


class Weekly(_In, kw_only=True):
    mon: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []
    tue: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []
    wed: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []
    thu: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []
    fri: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []
    sat: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []
    sun: Annotated[list[Window], msgspec.Meta(max_length=WINDOWS_PER_DAY_MAX)] = []

    def of(self, day: Weekday) -> list[Window]:
        windows: list[Window] = getattr(self, day)
        return windows


class BusinessHours(_In, kw_only=True):
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=TIMEZONE_MAX)]
    weekly: Weekly
    holidays: Annotated[list[HolidayDate], msgspec.Meta(max_length=HOLIDAYS_MAX)] = []


class PolicyPut(_In, kw_only=True):
    """``PUT /api/v1/escalation-policies/{id}``'s body."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
    team_id: uuid.UUID | None = None
    tiers: Annotated[list[Tier], msgspec.Meta(min_length=1, max_length=TIERS_MAX)]
    repeat: Annotated[int, msgspec.Meta(ge=0, le=REPEAT_MAX)] = 0
    sla_claim_s: SlaClaim | None = None
    business_hours: BusinessHours | None = None


class PolicyCopy(msgspec.Struct, kw_only=True):
    """What a hand-off keeps of its policy (``session_handoffs.policy``)."""

    id: uuid.UUID
    tiers: list[Tier]
    repeat: int = 0
    sla_claim_s: SlaClaim | None = None
    business_hours: BusinessHours | None = None


def copy_of(policy_id: uuid.UUID, body: PolicyPut) -> PolicyCopy:
    return PolicyCopy(
        id=policy_id,
        tiers=body.tiers,
        repeat=body.repeat,
        sla_claim_s=body.sla_claim_s,
        business_hours=body.business_hours,
    )
