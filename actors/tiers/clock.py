"""The tier engine's one clock.

Every "is it due?" of the engine asks ``clock.now()``. In production that is the
process's UTC time (the schedule was computed from the database's ``now()`` on the same
machines: NTP keeps the two within milliseconds, far inside the engine's second). A
test drives it (``clock.drive(at)``) to cross a weekend or a DST change without waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime


class EngineClock:
    def __init__(self) -> None:
        self._driven: datetime | None = None

    def now(self) -> datetime:
        return self._driven if self._driven is not None else datetime.now(UTC)

    def drive(self, at: datetime) -> None:
        """Stop the clock at ``at`` (aware) until the next ``drive`` or ``release``."""
        if at.tzinfo is None:
            raise ValueError("drive the clock with an aware datetime")
        self._driven = at

    def release(self) -> None:
        self._driven = None


clock = EngineClock()
