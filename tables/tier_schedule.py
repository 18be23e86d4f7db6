"""When each tier of a hand-off's policy is due, and its SLA (SPEC second edition).

Tier 0 is the notification at create, fired at once, in or out of business hours. Tier n
is due ``after_s`` after tier n-1's *scheduled* time (so a late engine never pushes the
rest later), counted in business hours when the policy has them. After the last tier,
rounds repeat from tier 1 ``repeat`` times. A release restarts from tier 1, its wait
counted from the release. ``claim_due_at`` is the create (or release) plus
``sla_claim_s[priority]`` in business hours; a priority the SLA leaves out has none.

Pure functions of the policy copy and an instant: the web (create, release) and the
tier engine (actors/tiers/) agree because they call the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tables.business_hours import add_seconds
from tables.policy_shapes import PolicyCopy

FIRST_ROUND = 1
AT_CREATE_TIER = 0
AFTER_RELEASE_TIER = 1


@dataclass(frozen=True, slots=True)
class Due:
    tier: int
    round: int
    at: datetime


def at_create(at: datetime) -> Due:
    """Tier 0: due the moment the hand-off is created."""
    return Due(AT_CREATE_TIER, FIRST_ROUND, at)


def after_release(policy: PolicyCopy, released_at: datetime) -> Due | None:
    """Tier 1 of round 1, counted from the release; None when the policy has only tier 0."""
    if len(policy.tiers) <= AFTER_RELEASE_TIER:
        return None
    wait_s = policy.tiers[AFTER_RELEASE_TIER].after_s
    return Due(AFTER_RELEASE_TIER, FIRST_ROUND, add_seconds(released_at, wait_s, policy.business_hours))


def after_tier(policy: PolicyCopy, fired: Due) -> Due | None:
    """The tier after ``fired`` (its scheduled time, not when it went out); None when the
    last round's last tier has fired."""
    tier, round_ = fired.tier + 1, fired.round
    if tier >= len(policy.tiers):
        if round_ > policy.repeat or len(policy.tiers) <= AFTER_RELEASE_TIER:
            return None
        tier, round_ = AFTER_RELEASE_TIER, round_ + 1
    return Due(tier, round_, add_seconds(fired.at, policy.tiers[tier].after_s, policy.business_hours))


def claim_due_at(policy: PolicyCopy, priority: str, since: datetime) -> datetime | None:
    """When the SLA wants it claimed, for ``priority`` as of ``since``; None without an SLA."""
    if policy.sla_claim_s is None:
        return None
    seconds = policy.sla_claim_s.for_priority(priority)
    if seconds is None:
        return None
    return add_seconds(since, seconds, policy.business_hours)
