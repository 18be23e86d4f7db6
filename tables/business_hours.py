"""Counting seconds in business hours: when a tier or an SLA wait, started at an instant,
runs out (SPEC second edition: "counted in business hours when set").

Windows are local wall-clock times in the policy's time zone, so a window of 08:00-18:00
is ten hours on every ordinary day and the hours around a DST change are whatever the
clock on the wall says (each window's ends are turned into instants with ``zoneinfo``;
an end that falls in a spring-forward gap moves forward with the clock, ``fold=0``).
A holiday closes its whole local day. Without business hours a wait is plain seconds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tables.policy_shapes import WEEKDAYS, BusinessHours, Window

# Enough to cross a year of holidays and a week with a single window; past it the hours
# have no open window at all, which validation refuses before a policy is stored.
DAYS_SCANNED_MAX = 800


class NeverOpen(ValueError):
    """The business hours have no open window within DAYS_SCANNED_MAX days."""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    # The tzdata package's list (a dependency, so a slim image without /usr/share/zoneinfo
    # knows every zone), not whatever the host's zoneinfo folder holds: "localtime" there
    # would name the server's own clock. "Factory" is tzdata's placeholder, no place.
    names = files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(names) - {"Factory"}


def known_zone(name: str) -> bool:
    """An IANA time zone name (``Europe/London``, ``UTC``)."""
    if name not in _iana_names():
        return False
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def wall_clock(text: str) -> time | None:
    """``HH:MM`` as a time; ``24:00`` (the end of the day) as None."""
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _instant(day: date, text: str, tz: ZoneInfo) -> datetime:
    at = wall_clock(text)
    if at is None:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    else:
        local = datetime.combine(day, at, tzinfo=tz)
    # Through UTC and back: a wall time in a spring-forward gap becomes the real instant.
    return local.astimezone(UTC)


def open_windows(day: date, hours: BusinessHours) -> list[tuple[datetime, datetime]]:
    """The day's open windows as UTC instants (none on a holiday)."""
    if day.isoformat() in hours.holidays:
        return []
    tz = zone(hours.timezone)
    windows: list[Window] = hours.weekly.of(WEEKDAYS[day.weekday()])
    return [(_instant(day, start, tz), _instant(day, end, tz)) for start, end in windows]


def add_seconds(start: datetime, seconds: float, hours: BusinessHours | None) -> datetime:
    """The instant ``seconds`` of open time after ``start`` (plain seconds without hours).

    A start out of hours waits for the next window; a wait that outlasts a window goes
    on in the next one ("a tier due at 19:00 on Friday with 08:00-18:00 hours fires
    Monday 08:00 + what was left").
    """
    if hours is None:
        return start + timedelta(seconds=seconds)
    left = timedelta(seconds=seconds)
    day = start.astimezone(zone(hours.timezone)).date() - timedelta(days=1)  # a window may end past midnight
    for _ in range(DAYS_SCANNED_MAX):
        for opens, closes in open_windows(day, hours):
            begin = max(opens, start)
            if closes <= begin:
                continue
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
        day += timedelta(days=1)
    raise NeverOpen(f"no open window in {DAYS_SCANNED_MAX} days of these business hours")


def has_open_window(hours: BusinessHours, around: datetime) -> bool:
    try:
        add_seconds(around, 1, hours)
    except NeverOpen:
        return False
    return True
