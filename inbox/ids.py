"""Event ids: Redis stream ids ``<ms>-<seq>``, increasing per account."""

from __future__ import annotations

import re

EventKey = tuple[int, int]
"""An event id parsed for ordering: ``(ms, seq)``."""

ZERO_ID = "0-0"
"""The id before every event: the ``last_event_id`` of an account with no events yet."""

_MAX_PART = 2**64 - 1
_EVENT_ID = re.compile(r"\A(\d{1,20})-(\d{1,20})\Z")


class InvalidEventId(ValueError):
    """A ``since`` (or any event id) that is not ``<ms>-<seq>``."""

    def __init__(self, text: object) -> None:
        super().__init__(
            f"{text!r} is not an inbox event id: expected '<ms>-<seq>' as sent in an "
            "event's 'id' or the hello's 'last_event_id', e.g. '1718000000000-0'"
        )
        self.text = text


def parse_event_id(text: str) -> EventKey:
    """``"1718000000000-3"`` -> ``(1718000000000, 3)``; InvalidEventId otherwise."""
    match = _EVENT_ID.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidEventId(text)
    ms, seq = int(match[1]), int(match[2])
    if ms > _MAX_PART or seq > _MAX_PART:
        raise InvalidEventId(text)
    return ms, seq


def format_event_id(key: EventKey) -> str:
    return f"{key[0]}-{key[1]}"


def next_event_id(key: EventKey) -> str | None:
    """The smallest id after ``key`` (an inclusive XRANGE start), None past the last one.

    Computed here rather than with XRANGE's ``(`` exclusive syntax, which Redis < 6.2 lacks
    and which rejects the largest id.
    """
    ms, seq = key
    if seq < _MAX_PART:
        return f"{ms}-{seq + 1}"
    if ms < _MAX_PART:
        return f"{ms + 1}-0"
    return None
