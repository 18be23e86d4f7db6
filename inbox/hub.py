"""The hub: one Redis pub/sub connection per web process, fanning events out to sockets.

It PSUBSCRIBEs to every account's live channel (``keys.LIVE_PATTERN``) and hands each
frame to that account's local subscribers. Pub/sub is at-most-once, so the loop never
trusts it alone: it catches every failure, backs off, reconnects, and then refills from
each account's stream everything after the last id each subscriber got. Per-subscriber
cursors make every delivery exactly-once and in order across replay, live and refill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from settings import get_settings

from . import keys
from .frames import frame_id
from .history import last_event_id, read_after
from .ids import EventKey, format_event_id, parse_event_id
from .subscriber import (
    CLIENT_BUFFER_EVENTS,
    DROPPED_HUB_STOPPED,
    Offer,
    Subscriber,
)

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_MIN_S = 0.1
RECONNECT_BACKOFF_MAX_S = 10.0
PING_INTERVAL_S = 5.0
"""A quiet subscription sends PING this often..."""
PONG_TIMEOUT_S = 5.0
"""...and a connection silent this long after it is declared dead and replaced."""
SOCKET_CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0
HEALTH_CHECK_INTERVAL_S = 30
"""redis-py PINGs a pooled connection idle this long before reusing it."""
COMMAND_RETRIES = 3
STOP_TIMEOUT_S = 3.0
"""``stop()`` returns within this, whatever Redis does (the web shutdown's share for the hub)."""
RECANCEL_INTERVAL_S = 0.1
"""How often ``stop()`` cancels the loop again while it runs on (see ``_cancel_until_done``)."""


@dataclass
class HubStats:
    """What the hub has done since it started."""

    subscribers: int = 0
    events_fanned_out: int = 0  # frames queued, counted per subscriber, live or refilled
    events_refilled: int = 0  # of those, queued by a refill after a reconnect
    gaps_refilled: int = 0  # refills that found events the subscription had missed
    duplicates_skipped: int = 0
    slow_subscribers_dropped: int = 0
    resyncs: int = 0  # subscribers told to refetch: their events were trimmed away
    reconnects: int = 0  # subscriptions re-established after a lost one
    connection_failures: int = 0


class HubNotStarted(RuntimeError):
    pass


class Hub:
    """Live inbox events for this process's websockets.

    ``await hub.start()``; per socket ``sub = await hub.subscribe(account_id, since)`` then
    ``async for frame in sub`` and finally ``hub.unsubscribe(sub)``; ``await hub.stop()``.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client_buffer_events: int = CLIENT_BUFFER_EVENTS,
        history_max_events: int | None = None,
        reconnect_backoff_min_s: float = RECONNECT_BACKOFF_MIN_S,
        reconnect_backoff_max_s: float = RECONNECT_BACKOFF_MAX_S,
        ping_interval_s: float = PING_INTERVAL_S,
        pong_timeout_s: float = PONG_TIMEOUT_S,
        socket_connect_timeout_s: float = SOCKET_CONNECT_TIMEOUT_S,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> None:
        settings = get_settings()
        url = redis_url or settings.redis_url
        if not url:
            raise ValueError("the inbox hub needs a Redis URL (REDIS_URL is unset)")
        self._redis_url = url
        self._client_buffer_events = client_buffer_events
        self._history_max_events = history_max_events or settings.inbox_history_max_events
        self._backoff_min_s = reconnect_backoff_min_s
        self._backoff_max_s = reconnect_backoff_max_s
        self._ping_interval_s = ping_interval_s
        self._pong_timeout_s = pong_timeout_s
        self._connect_timeout_s = socket_connect_timeout_s
        self._command_timeout_s = command_timeout_s

        self.stats = HubStats()
        self.connected = asyncio.Event()
        """Set while the subscription is live (and its refill done)."""
        self.disconnected = asyncio.Event()
        """Set while it is not: starting, reconnecting, stopped."""
        self.disconnected.set()

        self._subscribers: dict[str, set[Subscriber]] = {}
        self._last_delivered: dict[str, EventKey] = {}
        # Held by a refill and by a subscribe's history read, so a refill never runs while
        # a new subscriber's cursor is still unknown (it would be skipped and miss events).
        self._history_lock = asyncio.Lock()
        self._redis: redis.asyncio.Redis | None = None
        self._pubsub_redis: redis.asyncio.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # the loop's own check: a cancel alone can be lost (stop())
        self._ever_connected = False
        self._healthy = False  # the last subscription got as far as serving

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the subscriber loop (returns at once; ``connected`` tells when it is live)."""
        if self._task is not None:
            return
        self._stopping = False
        common: dict[str, Any] = {
            "socket_keepalive": True,
            "socket_connect_timeout": self._connect_timeout_s,
            "socket_timeout": self._command_timeout_s,
        }
        self._redis = redis.asyncio.Redis.from_url(
            self._redis_url,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            retry=Retry(ExponentialWithJitterBackoff(), COMMAND_RETRIES),
            **common,
        )
        # No retries on the subscription: redis-py would reconnect and resubscribe behind
        # our back, and the events published meanwhile would never be refilled.
        self._pubsub_redis = redis.asyncio.Redis.from_url(
            self._redis_url, retry=Retry(NoBackoff(), 0), **common
        )
        self._task = asyncio.create_task(self._run(), name="inbox-hub")

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the loop, let go of every subscriber, close the connections; returns
        within ``timeout_s`` even if Redis hangs (what is left then is logged and dropped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            await _cancel_until_done(task, deadline)
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub.drop(DROPPED_HUB_STOPPED)
        self._subscribers.clear()
        self._last_delivered.clear()
        self.stats.subscribers = 0
        clients = [client for client in (self._redis, self._pubsub_redis) if client is not None]
        self._redis = self._pubsub_redis = None
        if clients:
            closing = asyncio.ensure_future(
                asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
            )
            if not await _done_by(closing, deadline):
                closing.cancel()
                log.warning(
                    "inbox hub: its Redis connections did not close within %.1f s; dropped", timeout_s
                )

    # -- subscribers -------------------------------------------------------------------

    async def subscribe(self, account_id: object, since: str | None = None) -> Subscriber:
        """A subscriber of ``account_id``: the events after ``since`` (replay, or a resync
        frame when trimmed away), then live ones, with no gap and no duplicate.

        Without ``since`` only events after ``sub.last_event_id`` (the account's newest
        now) are delivered. InvalidEventId (a ValueError) for a malformed ``since``;
        Redis errors propagate (the subscriber is not kept).
        """
        if self._redis is None:
            raise HubNotStarted("call await hub.start() first")
        since_key = parse_event_id(since) if since is not None else None
        account = str(account_id)
        sub = Subscriber(
            account,
            buffer_events=self._client_buffer_events,
            backlog_max_events=self._history_max_events,
        )
        # Live first, history second: a frame that is in both is dropped by the cursor.
        self._subscribers.setdefault(account, set()).add(sub)
        self.stats.subscribers += 1
        try:
            async with self._history_lock:
                if since is None:
                    head = parse_event_id(await last_event_id(self._redis, account))
                    sub.last_event_id = format_event_id(head)
                    self._start(sub, head, [], resync=False)
                else:
                    history = await read_after(self._redis, account, since)
                    sub.last_event_id = format_event_id(history.head)
                    if history.resync:
                        self.stats.resyncs += 1
                        self._start(sub, history.head, [], resync=True)
                    else:
                        assert since_key is not None
                        self._start(sub, since_key, history.entries, resync=False)
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def _start(
        self,
        sub: Subscriber,
        cursor: EventKey,
        backlog: list[tuple[EventKey, bytes]],
        *,
        resync: bool,
    ) -> None:
        if not sub.active:  # already dropped as slow while its history was read
            return
        sub.start(cursor, backlog, resync)
        if sub.dropped_slow:
            self.stats.slow_subscribers_dropped += 1
            self._forget(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget ``sub`` (its socket closed). Safe to call twice."""
        sub.close()
        self._forget(sub)

    def subscriber_count(self, account_id: object) -> int:
        return len(self._subscribers.get(str(account_id), ()))

    def last_delivered_id(self, account_id: object) -> str | None:
        """The newest event id this hub handed to a subscriber of the account."""
        key = self._last_delivered.get(str(account_id))
        return None if key is None else format_event_id(key)

    def _forget(self, sub: Subscriber) -> None:
        subs = self._subscribers.get(sub.account_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        self.stats.subscribers -= 1
        if not subs:
            del self._subscribers[sub.account_id]
            self._last_delivered.pop(sub.account_id, None)

    def _deliver(
        self,
        account: str,
        subs: list[Subscriber],
        key: EventKey,
        frame: bytes,
        *,
        live: bool,
    ) -> int:
        """Offer one frame to ``subs``; returns how many queued it."""
        queued = 0
        for sub in subs:
            result = sub.offer(key, frame, live=live)
            if result is Offer.QUEUED:
                queued += 1
            elif result is Offer.DUPLICATE:
                self.stats.duplicates_skipped += 1
            elif result is Offer.DROPPED:
                self.stats.slow_subscribers_dropped += 1
                log.info("inbox subscriber of account %s too slow; dropped", account)
                self._forget(sub)
        if queued:
            self.stats.events_fanned_out += queued
            self._last_delivered[account] = max(key, self._last_delivered.get(account, key))
        return queued

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        """Serve the subscription until stopped: every failure ends in a reconnect."""
        delay_s = self._backoff_min_s
        while not self._stopping:
            try:
                await self._serve_subscription()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # why so broad: a dead loop is a silently dead inbox
                if self._stopping:
                    return
                self.stats.connection_failures += 1
                if isinstance(exc, (redis.RedisError, OSError, TimeoutError)):
                    log.warning(
                        "inbox hub lost Redis (%s: %s); reconnecting in %.2f s",
                        type(exc).__name__,
                        exc,
                        delay_s,
                    )
                else:
                    log.exception("inbox hub loop failed; reconnecting in %.2f s", delay_s)
            if self._stopping:
                return
            if self._healthy:
                # It had been up: start the backoff over instead of waiting long.
                delay_s = self._backoff_min_s
                self._healthy = False
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._backoff_max_s)

    async def _serve_subscription(self) -> None:
        assert self._pubsub_redis is not None
        pubsub = self._pubsub_redis.pubsub()
        try:
            await pubsub.psubscribe(keys.LIVE_PATTERN)
            await self._await_confirmation(pubsub)
            # Subscribed first, refill second: whatever the refill does not see arrives live.
            if self._ever_connected:
                self.stats.reconnects += 1
                log.info("inbox hub resubscribed to Redis; refilling the gap")
            self._ever_connected = True
            await self._refill()
            self._healthy = True
            self._set_connected(True)
            await self._pump(pubsub)
        finally:
            self._set_connected(False)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _await_confirmation(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._pong_timeout_s
        while loop.time() < deadline:
            message = await pubsub.get_message(timeout=deadline - loop.time())
            if message is not None and message["type"] == "psubscribe":
                return
        raise TimeoutError(f"no PSUBSCRIBE confirmation in {self._pong_timeout_s} s")

    async def _pump(self, pubsub: Any) -> None:
        """Read messages until the connection fails; PING a quiet one to prove it alive.

        redis-py's own health check cannot do this: it pings only before a read and swallows
        the reply, so a peer that went silent (no FIN, no RST) would block us forever.
        """
        loop = asyncio.get_running_loop()
        ping_sent_at: float | None = None
        while not self._stopping:
            message = await pubsub.get_message(timeout=self._ping_interval_s)
            if message is not None:
                ping_sent_at = None
                if message["type"] == "pmessage":
                    self._on_message(message["channel"], message["data"])
                    # Let the sockets' writers run between messages of a burst, or every
                    # subscriber would look slow while the hub drains its read buffer.
                    await asyncio.sleep(0)
                continue
            now = loop.time()
            if ping_sent_at is None:
                await pubsub.ping()
                ping_sent_at = now
            elif now - ping_sent_at >= self._pong_timeout_s:
                raise TimeoutError(f"Redis did not answer PING within {self._pong_timeout_s} s")

    def _on_message(self, channel: bytes | str, data: bytes | str) -> None:
        try:
            account = keys.account_of_channel(channel)
            frame = data.encode() if isinstance(data, str) else data
            key = parse_event_id(frame_id(frame))
        except ValueError as exc:
            # Someone else's message on our pattern must not cost the subscription.
            log.warning("inbox hub ignored a malformed message: %s", exc)
            return
        subs = self._subscribers.get(account)
        if subs:
            self._deliver(account, list(subs), key, frame, live=True)

    async def _refill(self) -> None:
        """Hand every subscriber what the stream holds after its cursor."""
        assert self._redis is not None
        async with self._history_lock:
            for account in list(self._subscribers):
                by_cursor: dict[EventKey, list[Subscriber]] = {}
                for sub in self._subscribers.get(account, ()):
                    if sub.cursor_key is not None:
                        by_cursor.setdefault(sub.cursor_key, []).append(sub)
                # Normally one cursor per account: all its sockets have seen the same events.
                for cursor, subs in sorted(by_cursor.items()):
                    history = await read_after(self._redis, account, format_event_id(cursor))
                    if history.resync:
                        for sub in subs:
                            sub.resync_now(history.head)
                            self.stats.resyncs += 1
                        continue
                    missed = refilled = 0
                    for key, frame in history.entries:
                        queued = self._deliver(account, subs, key, frame, live=False)
                        missed += queued > 0
                        refilled += queued
                    if refilled:
                        self.stats.gaps_refilled += 1
                        self.stats.events_refilled += refilled
                        log.info(
                            "inbox hub refilled %d missed event(s) to %d subscriber(s) of account %s",
                            missed,
                            len(subs),
                            account,
                        )

    def _set_connected(self, up: bool) -> None:
        if up:
            self.disconnected.clear()
            self.connected.set()
        else:
            self.connected.clear()
            self.disconnected.set()


async def _done_by(future: asyncio.Future[Any], deadline: float) -> bool:
    """Wait for ``future`` until the loop time ``deadline``; whether it is done. (Not
    ``asyncio.wait_for``: on Python 3.11 that loses a cancel of its caller, see below.)"""
    left_s = deadline - asyncio.get_running_loop().time()
    if left_s > 0:
        await asyncio.wait({future}, timeout=left_s)
    return future.done()


async def _cancel_until_done(task: asyncio.Task[None], deadline: float) -> bool:
    """Cancel ``task`` until it ends, or until ``deadline`` (then log where it is stuck).

    One cancel is not enough. redis-py sends every command through
    ``asyncio.wait_for(..., socket_timeout)``, and on Python 3.11 ``wait_for`` swallows
    a cancel that lands after the send finished but before ``wait_for`` resumed
    (CPython gh-86296, fixed in 3.12 by gh-96764): the loop went on pinging forever and
    ``stop()`` never returned. So the cancel is repeated until the task ends, as anyio's
    cancel scopes do; and the loop checks ``_stopping`` itself at every turn.
    """
    loop = asyncio.get_running_loop()
    while not task.done():
        if loop.time() >= deadline:
            log.error(
                "inbox hub: its loop did not stop in time and is left running; it waits at:\n%s",
                "".join(_await_chain(task)),
            )
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(RECANCEL_INTERVAL_S, deadline - loop.time()))
    if not task.cancelled() and task.exception() is not None:
        log.warning("inbox hub: its loop ended with an error while stopping", exc_info=task.exception())
    return True


def _await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where a suspended task waits, outermost first (``Task.print_stack`` shows only
    the outermost frame of a suspended task)."""
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            lines.append(f"  awaiting {awaited!r}\n")
            break
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return lines
