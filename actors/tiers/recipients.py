"""Whom a tier notifies: the eligible users its ``notify`` names, never the creator.

``user_ids`` names people; ``roles`` and ``team_id`` name a group (both, when both are
given: the engineers of that team). Tier 0 of an escalation that named a
``target_user_id`` notifies the target alone, as the first edition did.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from tables.policy_shapes import Tier
from tables.queries.tiers import Person
from tables.tier_schedule import AT_CREATE_TIER


def tier_recipients(
    tier: Tier,
    tier_index: int,
    *,
    people: Iterable[Person],
    creator_id: uuid.UUID,
    target_user_id: uuid.UUID | None,
) -> list[Person]:
    """The recipients, by name then id (a stable order for messages and events)."""
    candidates = [person for person in people if person.id != creator_id]
    if tier_index == AT_CREATE_TIER and target_user_id is not None:
        return [person for person in candidates if person.id == target_user_id]
    notify = tier.notify
    named = set(notify.user_ids or ())
    by_group = bool(notify.roles) or notify.team_id is not None

    def chosen(person: Person) -> bool:
        if person.id in named:
            return True
        if not by_group:
            return False
        role_fits = not notify.roles or person.account_role in notify.roles
        team_fits = notify.team_id is None or person.team_id == notify.team_id
        return role_fits and team_fits

    return sorted((person for person in candidates if chosen(person)), key=lambda p: (p.name, str(p.id)))
