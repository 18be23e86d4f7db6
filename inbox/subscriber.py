"""One websocket's view of its account's events: replay first, then live, in order."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable

from .frames import RESYNC_FRAME
from .ids import ZERO_ID, EventKey, format_event_id

CLIENT_BUFFER_EVENTS = 256
"""Live frames a subscriber may have waiting before it counts as slow and is dropped."""

DROPPED_SLOW = "slow"
DROPPED_HUB_STOPPED = "hub_stopped"


class SubscriberDropped(Exception):
    """The hub let go of this subscriber; for ``"slow"`` close the socket with 1013."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"inbox subscriber dropped: {reason}")
        self.reason = reason


WriteNow = Callable[[bytes], bool]
"""Writes a frame to the socket at once; False when it cannot now (see attach_writer)."""


class Offer(enum.Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"  # at or before the subscriber's cursor: already delivered
    DROPPED = "dropped"  # this offer overflowed the buffer; the subscriber is slow
    IGNORED = "ignored"  # the subscriber was already gone


class Subscriber:
    """Frames for one socket: ``await sub.next_frame()`` or ``async for frame in sub``.

    A bounded buffer: live frames beyond ``buffer_events`` mark it slow (``dropped`` set,
    ``dropped_slow`` true) instead of blocking the hub or growing without bound. Replayed
    and refilled frames do not count as live (they are bounded by the history size).
    """

    def __init__(
        self,
        account_id: str,
        *,
        buffer_events: int = CLIENT_BUFFER_EVENTS,
        backlog_max_events: int = 1000,
    ) -> None:
        self.account_id = account_id
        self.last_event_id = ZERO_ID
        """The account's newest event id when subscribing: the hello's ``last_event_id``."""
        self.resync = False
        """True when ``since`` was trimmed away; the first frame is ``{"type":"resync"}``."""
        self.dropped = asyncio.Event()
        self.drop_reason: str | None = None
        self._buffer_events = buffer_events
        self._frames_max = buffer_events + backlog_max_events
        self._frames: deque[tuple[bytes, bool]] = deque()  # (frame, counts as live)
        self._live_frames = 0
        self._wakeup = asyncio.Event()
        # Last id queued, None while the hub reads history for this subscriber; live frames
        # arriving meanwhile wait in _pending and are deduplicated against the replay.
        self._cursor: EventKey | None = None
        self._pending: list[tuple[EventKey, bytes]] = []
        self._closed = False
        self._write_now: WriteNow | None = None
        self._reader_parked = False  # next_frame() waits, with nothing queued

    @property
    def dropped_slow(self) -> bool:
        return self.drop_reason == DROPPED_SLOW

    @property
    def cursor(self) -> str | None:
        """The last event id handed to this subscriber (None while it replays)."""
        return None if self._cursor is None else format_event_id(self._cursor)

    @property
    def cursor_key(self) -> EventKey | None:
        return self._cursor

    @property
    def buffered(self) -> int:
        """Frames waiting to be read."""
        return len(self._frames)

    @property
    def active(self) -> bool:
        return not self._closed

    async def next_frame(self) -> bytes:
        """The next frame, waiting for one; SubscriberDropped once the hub let go."""
        while not self._frames:
            if self.drop_reason is not None:
                raise SubscriberDropped(self.drop_reason)
            self._wakeup.clear()
            self._reader_parked = True
            try:
                await self._wakeup.wait()
            finally:
                self._reader_parked = False
        frame, live = self._frames.popleft()
        if live:
            self._live_frames -= 1
        return frame

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> bytes:
        return await self.next_frame()

    def attach_writer(self, write_now: WriteNow) -> None:
        """From now on, a frame offered while the reader is parked with nothing queued is
        written at once by ``write_now`` instead of waking the reader: no task switch per
        socket per event. The reader must have sent everything it took (it has, when
        parked), so the order holds; when ``write_now`` says no, the frame is queued."""
        self._write_now = write_now

    # The hub's side. Plain methods, no awaits: each runs whole between the hub's reads.

    def start(self, cursor: EventKey, backlog: list[tuple[EventKey, bytes]], resync: bool) -> None:
        """History is read: queue it, then the live frames that came meanwhile, deduped."""
        if self._closed:
            return
        if resync:
            self.resync = True
            self._append(RESYNC_FRAME, live=False)
        for key, frame in backlog:
            self._append(frame, live=False)
            cursor = max(cursor, key)
        self._cursor = cursor
        pending, self._pending = self._pending, []
        for key, frame in pending:
            if self.offer(key, frame, live=True) is Offer.DROPPED:
                return

    def offer(self, key: EventKey, frame: bytes, *, live: bool) -> Offer:
        """Queue ``frame`` unless already delivered; Offer.DROPPED when that made it slow."""
        if self._closed:
            return Offer.IGNORED
        if self._cursor is None:
            if len(self._pending) >= self._buffer_events:
                self.drop(DROPPED_SLOW)
                return Offer.DROPPED
            self._pending.append((key, frame))
            return Offer.QUEUED
        if key <= self._cursor:
            return Offer.DUPLICATE
        if (live and self._live_frames >= self._buffer_events) or len(self._frames) >= self._frames_max:
            self.drop(DROPPED_SLOW)
            return Offer.DROPPED
        write_now = self._write_now if self._reader_parked and not self._frames else None
        if write_now is not None and write_now(frame):
            self._cursor = key
            return Offer.QUEUED
        self._append(frame, live=live)
        self._cursor = key
        return Offer.QUEUED

    def resync_now(self, head: EventKey) -> None:
        """Events after the cursor were trimmed away while the hub was disconnected."""
        if self._closed:
            return
        self.resync = True
        self._append(RESYNC_FRAME, live=False)
        self._cursor = max(head, self._cursor or head)

    def drop(self, reason: str) -> None:
        """Let go: free the buffer and wake the reader, which gets SubscriberDropped."""
        if self._closed:
            return
        self._closed = True
        self.drop_reason = reason
        self._write_now = None
        self._frames.clear()
        self._pending.clear()
        self._live_frames = 0
        self.dropped.set()
        self._wakeup.set()

    def close(self) -> None:
        """Unsubscribed by its owner: stop accepting frames."""
        self._closed = True
        self._write_now = None
        self._frames.clear()
        self._pending.clear()

    def _append(self, frame: bytes, *, live: bool) -> None:
        self._frames.append((frame, live))
        if live:
            self._live_frames += 1
        self._wakeup.set()
