"""Frames: the bytes a websocket sends, an event's JSON with its stream id in front.

The publish script builds the same frame in Lua (``'{"id":"' .. id .. '",' .. json``);
``with_id`` is its Python twin for replay, so live and replayed frames are byte-identical.
"""

from __future__ import annotations

from .events import Event, decode_event

RESYNC_FRAME = b'{"type":"resync"}'
"""Sent instead of a replay when events after ``since`` were trimmed away: refetch the queue."""

_ID_PREFIX = b'{"id":"'


def with_id(event_id: str, event_json: bytes) -> bytes:
    """Splice ``"id"`` into an encoded event (always a non-empty JSON object)."""
    return _ID_PREFIX + event_id.encode() + b'",' + event_json[1:]


def frame_id(frame: bytes) -> str:
    """The event id at the front of a frame; ValueError when it is not an event frame."""
    if not frame.startswith(_ID_PREFIX):
        raise ValueError(f"not an inbox event frame: {frame[:60]!r}")
    end = frame.find(b'"', len(_ID_PREFIX))
    if end < 0:
        raise ValueError(f"not an inbox event frame: {frame[:60]!r}")
    return frame[len(_ID_PREFIX) : end].decode()


def decode_frame(frame: bytes) -> tuple[str, Event]:
    """``(event id, event)`` from a frame, for clients and tests."""
    return frame_id(frame), decode_event(frame)
