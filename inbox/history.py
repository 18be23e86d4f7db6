"""Replay: the events an account's stream holds after a ``since`` id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio

from . import keys
from .frames import with_id
from .ids import ZERO_ID, EventKey, next_event_id, parse_event_id


class Resync:
    """Marker: the events after ``since`` were trimmed away; the client refetches the queue."""

    _instance: Resync | None = None

    def __new__(cls) -> Resync:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = Resync()


@dataclass(frozen=True, slots=True)
class History:
    """What the stream holds after ``since``, read in one MULTI so the parts agree."""

    entries: list[tuple[EventKey, bytes]]
    """(id, frame) after ``since``, oldest first; empty when ``resync``."""
    head: EventKey
    """The newest event id in the stream, ``(0, 0)`` when it is empty."""
    resync: bool


def _as_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(fields: dict[Any, Any], name: str) -> bytes:
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        raise ValueError(f"inbox stream entry lacks field {name!r}: {fields!r}")
    return _as_bytes(value)


async def read_after(redis_client: redis.asyncio.Redis, account_id: object, since: str) -> History:
    """The stream after ``since`` (InvalidEventId for a malformed one)."""
    since_key = parse_event_id(since)
    stream = keys.stream(account_id)
    start = next_event_id(since_key)
    async with redis_client.pipeline(transaction=True) as pipe:
        pipe.xrange(stream, "-", "+", count=1)
        pipe.exists(keys.trimmed_marker(account_id))
        pipe.xrevrange(stream, "+", "-", count=1)
        if start is not None:
            pipe.xrange(stream, start, "+")
        replies = await pipe.execute()
    first, trimmed, last = replies[0], replies[1], replies[2]
    after = replies[3] if start is not None else []

    head = parse_event_id(_as_str(last[0][0])) if last else (0, 0)
    # Every id we hand out was in the stream; one older than the first kept entry of a
    # stream that has trimmed may have lost the events after it.
    if first and trimmed and since_key < parse_event_id(_as_str(first[0][0])):
        return History(entries=[], head=head, resync=True)
    entries = []
    for raw_id, fields in after:
        event_id = _as_str(raw_id)
        entries.append((parse_event_id(event_id), with_id(event_id, _field(fields, "e"))))
    return History(entries=entries, head=head, resync=False)


async def replay(redis_client: redis.asyncio.Redis, account_id: object, since: str) -> list[bytes] | Resync:
    """The frames after ``since`` in order, or ``RESYNC`` when some were trimmed away.

    Raises ``InvalidEventId`` (a ValueError) when ``since`` is not an event id.
    """
    history = await read_after(redis_client, account_id, since)
    if history.resync:
        return RESYNC
    return [frame for _, frame in history.entries]


async def last_event_id(redis_client: redis.asyncio.Redis, account_id: object) -> str:
    """The account's newest event id, ``"0-0"`` when it has none (a valid ``since``)."""
    last = await redis_client.xrevrange(keys.stream(account_id), "+", "-", count=1)
    return _as_str(last[0][0]) if last else ZERO_ID


__all__ = ["RESYNC", "History", "Resync", "last_event_id", "read_after", "replay"]
