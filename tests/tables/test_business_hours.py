"""Waits counted in business hours: across a weekend, a holiday and DST changes, on a
driven clock (each start is an instant the test names; nothing waits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tables.business_hours import NeverOpen, add_seconds
from tables.policy_shapes import BusinessHours, PolicyCopy, SlaClaim, Tier, Weekly
from tables.tier_schedule import Due, after_release, after_tier, at_create, claim_due_at

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = [("08:00", "18:00")]


def weekdays(zone: str, windows: list[tuple[str, str]] = OFFICE, **extra: object) -> BusinessHours:
    weekly = Weekly(mon=windows, tue=windows, wed=windows, thu=windows, fri=windows)
    return BusinessHours(timezone=zone, weekly=weekly, **extra)  # type: ignore[arg-type]


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def test_without_business_hours_a_wait_is_plain_seconds() -> None:
    start = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)
    assert add_seconds(start, 300, None) == start + timedelta(seconds=300)


def test_a_wait_due_on_friday_evening_runs_from_monday_morning() -> None:
    hours = weekdays("Europe/London")
    # 19:00 Friday, out of hours: Monday 08:00 + the whole wait.
    assert add_seconds(local(LONDON, 2026, 12, 4, 19, 0), 300, hours) == local(LONDON, 2026, 12, 7, 8, 5)
    # 17:30 Friday with an hour to go: half an hour on Friday, the rest on Monday.
    assert add_seconds(local(LONDON, 2026, 12, 4, 17, 30), 3600, hours) == local(LONDON, 2026, 12, 7, 8, 30)
    # In hours, inside one window: plain seconds.
    assert add_seconds(local(LONDON, 2026, 12, 7, 9, 0), 600, hours) == local(LONDON, 2026, 12, 7, 9, 10)


def test_a_holiday_is_closed_all_day() -> None:
    hours = weekdays("Europe/London", holidays=["2026-12-07"])
    assert add_seconds(local(LONDON, 2026, 12, 4, 19, 0), 300, hours) == local(LONDON, 2026, 12, 8, 8, 5)


def test_the_spring_dst_change_keeps_wall_clock_windows() -> None:
    # London moves to BST on Sunday 2027-03-28: Friday 17:00 GMT + 2 h of open time is
    # Monday 09:00 BST, which is 08:00 UTC, not 09:00 UTC.
    hours = weekdays("Europe/London")
    due = add_seconds(local(LONDON, 2027, 3, 26, 17, 0), 7200, hours)
    assert due == local(LONDON, 2027, 3, 29, 9, 0)
    assert due.astimezone(UTC) == datetime(2027, 3, 29, 8, 0, tzinfo=UTC)


def test_a_window_across_the_autumn_change_lasts_what_the_clock_on_the_wall_says() -> None:
    # New York falls back at 02:00 on Sunday 2026-11-01: a 00:00-04:00 window that night
    # is five real hours (01:00-02:00 happens twice).
    hours = BusinessHours(timezone="America/New_York", weekly=Weekly(sun=[("00:00", "04:00")]))
    start = local(NEW_YORK, 2026, 11, 1, 0, 0)
    last_second = datetime(2026, 11, 1, 8, 59, 59, tzinfo=UTC)  # 03:59:59 EST
    assert add_seconds(start, 5 * 3600 - 1, hours).astimezone(UTC) == last_second
    # One second more does not fit: it waits for next Sunday.
    assert add_seconds(start, 5 * 3600 + 1, hours) == local(NEW_YORK, 2026, 11, 8, 0, 0, 1)


def test_hours_that_never_open_are_refused_rather_than_looping() -> None:
    never = BusinessHours(timezone="UTC", weekly=Weekly())
    with pytest.raises(NeverOpen):
        add_seconds(datetime(2026, 12, 4, tzinfo=UTC), 60, never)


def three_tiers(**policy: object) -> PolicyCopy:
    import uuid

    return PolicyCopy(
        id=uuid.uuid4(),
        tiers=[
            Tier(after_s=0, channels=["bell"]),
            Tier(after_s=60, channels=["email"]),
            Tier(after_s=120, channels=["slack"]),
        ],
        **policy,  # type: ignore[arg-type]
    )


def test_tiers_follow_each_other_then_repeat_from_tier_1() -> None:
    created = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    policy = three_tiers(repeat=1)
    due = at_create(created)
    seen = []
    while due is not None:
        seen.append((due.tier, due.round, (due.at - created).total_seconds()))
        due = after_tier(policy, due)
    assert seen == [(0, 1, 0), (1, 1, 60), (2, 1, 180), (1, 2, 240), (2, 2, 360)]


def test_a_late_tier_does_not_push_the_next_one_later() -> None:
    # The next tier counts from the fired tier's scheduled time, whenever it went out.
    policy = three_tiers()
    scheduled = Due(1, 1, datetime(2026, 12, 7, 9, 1, tzinfo=UTC))
    following = after_tier(policy, scheduled)
    assert following == Due(2, 1, datetime(2026, 12, 7, 9, 3, tzinfo=UTC))


def test_a_release_restarts_at_tier_1_counted_from_the_release() -> None:
    released = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert after_release(three_tiers(), released) == Due(1, 1, released + timedelta(seconds=60))


def test_the_sla_is_per_priority_and_counted_in_business_hours() -> None:
    policy = three_tiers(
        sla_claim_s=SlaClaim(urgent=900, normal=3600), business_hours=weekdays("Europe/London")
    )
    friday_evening = local(LONDON, 2026, 12, 4, 17, 45)
    assert claim_due_at(policy, "urgent", friday_evening) == local(LONDON, 2026, 12, 4, 18, 0)
    assert claim_due_at(policy, "normal", friday_evening) == local(LONDON, 2026, 12, 7, 8, 45)
    assert claim_due_at(policy, "low", friday_evening) is None  # no SLA for that priority


def test_a_time_zone_is_an_iana_name_never_the_servers_own_clock() -> None:
    from tables.business_hours import known_zone

    assert known_zone("Europe/London") and known_zone("UTC")
    assert not any(
        known_zone(name) for name in ("localtime", "posixrules", "Factory", "../etc/passwd", "Mars/Olympus")
    )
