"""The rules of an escalation policy that its types cannot say (SPEC second edition,
"Escalation policies and SLA": "Bad shapes: 400/422 with the field named").

``tables.policy_shapes`` bounds every value, and a body that breaks a bound is a 400
from decoding, its ``errors`` naming the field (``tiers[0].after_s``). What is left is
here, a 422 of the same form: the detail starts with the field's path and ``errors``
lists ``{message, key, source}`` for each broken rule, keys written as decoding writes
them (``tiers[1].notify.user_ids[2]``, ``business_hours.weekly.mon[0]``).

``shape_errors`` needs nothing but the body; ``account_errors`` reads the account (its
users and teams). Both are checked before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from server.problems import Problem
from tables import Team, User
from tables.business_hours import has_open_window, known_zone
from tables.policy_shapes import AFTER_S_MIN, WEEKDAYS, BusinessHours, PolicyPut, Tier, Window
from tables.queries.tenancy import ids_in_account

# Channels whose message goes to people, so a tier on them must name someone; Slack and
# Teams post to the account's channels whoever is named.
PERSONAL_CHANNELS = frozenset({"email", "bell"})
ERRORS_LISTED_MAX = 20

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FieldError:
    key: str  # the field's path in the body, as msgspec's decode errors name it
    message: str


def _duplicates(values: Iterable[T]) -> Iterator[tuple[int, T]]:
    """(index, value) of every value seen before it."""
    seen: set[T] = set()
    for index, value in enumerate(values):
        if value in seen:
            yield index, value
        seen.add(value)


def _tier_errors(index: int, tier: Tier) -> Iterator[FieldError]:
    at = f"tiers[{index}]"
    if index == 0 and tier.after_s != 0:
        yield FieldError(f"{at}.after_s", "tier 0 is the notification at create: its after_s must be 0")
    if index > 0 and tier.after_s < AFTER_S_MIN:
        yield FieldError(f"{at}.after_s", f"a later tier waits at least {AFTER_S_MIN} s after the one before")
    for position, channel in _duplicates(tier.channels):
        yield FieldError(f"{at}.channels[{position}]", f"{channel} is listed twice")
    personal = sorted(PERSONAL_CHANNELS.intersection(tier.channels))
    if personal and not tier.notify.names_anyone():
        yield FieldError(
            f"{at}.notify",
            f"the tier sends {' and '.join(personal)} but names nobody: give roles, team_id or user_ids",
        )
    for position, user_id in _duplicates(tier.notify.user_ids or []):
        yield FieldError(f"{at}.notify.user_ids[{position}]", f"{user_id} is listed twice")


def _minutes(wall_clock: str) -> int:
    hours, minutes = wall_clock.split(":")
    return int(hours) * 60 + int(minutes)  # "24:00" is the day's end, 1440


def _window_errors(day: str, windows: list[Window]) -> Iterator[FieldError]:
    previous_end: int | None = None
    for index, (start, end) in enumerate(windows):
        at = f"business_hours.weekly.{day}[{index}]"
        opens, closes = _minutes(start), _minutes(end)
        if opens >= closes:
            yield FieldError(at, f"the window must start before it ends ({start} - {end})")
        elif previous_end is not None and opens < previous_end:
            yield FieldError(at, "windows must be in order and not overlap the one before")
        previous_end = max(previous_end or 0, closes)


def _business_hours_errors(hours: BusinessHours, now: datetime) -> Iterator[FieldError]:
    zone_known = known_zone(hours.timezone)
    if not zone_known:
        yield FieldError("business_hours.timezone", f"{hours.timezone!r} is not a known IANA time zone")
    windows_sane = True
    for day in WEEKDAYS:
        for error in _window_errors(day, hours.weekly.of(day)):
            windows_sane = False
            yield error
    for index, text in enumerate(hours.holidays):
        try:
            date.fromisoformat(text)
        except ValueError:
            yield FieldError(f"business_hours.holidays[{index}]", f"{text} is not a date")
    for index, text in _duplicates(hours.holidays):
        yield FieldError(f"business_hours.holidays[{index}]", f"{text} is listed twice")
    if zone_known and windows_sane and not has_open_window(hours, now):
        yield FieldError("business_hours.weekly", "the week has no open window: nothing would ever be due")


def shape_errors(body: PolicyPut, *, now: datetime | None = None) -> list[FieldError]:
    """The rules on the body alone, in the order of its fields."""
    errors = [error for index, tier in enumerate(body.tiers) for error in _tier_errors(index, tier)]
    if body.repeat > 0 and len(body.tiers) < 2:
        errors.append(
            FieldError("repeat", "rounds repeat from tier 1: a policy that repeats needs 2 tiers or more")
        )
    if body.business_hours is not None:
        errors.extend(_business_hours_errors(body.business_hours, now or datetime.now(UTC)))
    return errors


async def account_errors(account_id: uuid.UUID, body: PolicyPut) -> list[FieldError]:
    """The users and teams the policy names must be the account's (two queries)."""
    named_teams: list[tuple[str, uuid.UUID]] = []
    if body.team_id is not None:
        named_teams.append(("team_id", body.team_id))
    named_users: list[tuple[str, uuid.UUID]] = []
    for index, tier in enumerate(body.tiers):
        if tier.notify.team_id is not None:
            named_teams.append((f"tiers[{index}].notify.team_id", tier.notify.team_id))
        for position, user_id in enumerate(tier.notify.user_ids or []):
            named_users.append((f"tiers[{index}].notify.user_ids[{position}]", user_id))
    teams = await ids_in_account(Team, row_ids={row_id for _, row_id in named_teams}, account_id=account_id)
    users = await ids_in_account(User, row_ids={row_id for _, row_id in named_users}, account_id=account_id)
    errors = [
        FieldError(key, f"team {team_id} does not exist in this account")
        for key, team_id in named_teams
        if team_id not in teams
    ]
    errors += [
        FieldError(key, f"user {user_id} does not exist in this account")
        for key, user_id in named_users
        if user_id not in users
    ]
    return errors


def invalid_policy(errors: list[FieldError]) -> Problem:
    first = errors[0]
    more = f" (and {len(errors) - 1} more, in errors)" if len(errors) > 1 else ""
    return Problem(
        422,
        f"{first.key}: {first.message}{more}",
        errors=[
            {"message": error.message, "key": error.key, "source": "body"}
            for error in errors[:ERRORS_LISTED_MAX]
        ],
    )


async def require_valid_policy(account_id: uuid.UUID, body: PolicyPut) -> None:
    """422 naming every broken rule (the first in ``detail``); nothing is written before."""
    errors = shape_errors(body) + await account_errors(account_id, body)
    if errors:
        raise invalid_policy(errors)
