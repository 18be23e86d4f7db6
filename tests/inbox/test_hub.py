"""The hub fans events out to the websockets of their account, on every replica."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio

from inbox import (
    RESYNC_FRAME,
    InvalidEventId,
    Subscriber,
    SubscriberDropped,
    decode_frame,
    last_event_id,
    publish,
)

from .conftest import StartHub
from .helpers import created, next_frame, next_ids

pytestmark = pytest.mark.asyncio


async def test_an_event_reaches_subscribers_of_its_account_and_no_other(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub()
    mine = await hub.subscribe(account_id)
    theirs = await hub.subscribe("another-account")

    event_id = await publish(aredis, account_id, created(1))
    sentinel_id = await publish(aredis, "another-account", created(2))

    assert decode_frame(await next_frame(mine)) == (event_id, created(1))
    # The other account's first frame is its own event: ours never reached it.
    assert decode_frame(await next_frame(theirs))[0] == sentinel_id
    assert hub.last_delivered_id(account_id) == event_id


async def test_two_hubs_like_two_replicas_both_deliver_an_event(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    replica_a, replica_b = await start_hub(), await start_hub()
    on_a = await replica_a.subscribe(account_id)
    on_b = await replica_b.subscribe(account_id)

    event_id = await publish(aredis, account_id, created(1))

    assert decode_frame(await next_frame(on_a)) == (event_id, created(1))
    assert decode_frame(await next_frame(on_b)) == (event_id, created(1))


async def test_subscribing_without_since_gets_the_events_after_the_hello_id(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub()
    await publish(aredis, account_id, created(1))
    before = await last_event_id(aredis, account_id)

    sub = await hub.subscribe(account_id)
    after = await publish(aredis, account_id, created(2))

    assert sub.last_event_id == before
    assert await next_ids(sub, 1) == [after]


async def test_subscribing_with_since_replays_the_missed_events_then_live_ones_without_gap_or_repeat(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub(client_buffer_events=1000)
    total = 300
    published: list[str] = []
    halfway = asyncio.Event()

    async def publisher() -> None:
        for n in range(total):
            published.append(await publish(aredis, account_id, created(n)))
            if n == 50:
                halfway.set()

    publishing = asyncio.create_task(publisher())
    await asyncio.wait_for(halfway.wait(), 10)
    since = published[10]

    # Subscribing while events keep coming: the boundary between replay and live moves.
    sub = await hub.subscribe(account_id, since=since)
    await publishing
    received = await next_ids(sub, total - 11)

    assert received == published[11:]
    assert sub.buffered == 0
    assert not sub.resync


async def test_subscribing_with_a_trimmed_since_starts_with_a_resync_then_live_events(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub()
    ids = [await publish(aredis, account_id, created(n), history_max_events=5) for n in range(300)]

    sub = await hub.subscribe(account_id, since=ids[0])
    live = await publish(aredis, account_id, created(300))

    assert sub.resync
    assert sub.last_event_id == ids[-1]
    assert await next_frame(sub) == RESYNC_FRAME
    assert json.loads(RESYNC_FRAME) == {"type": "resync"}
    assert await next_ids(sub, 1) == [live]


async def test_subscribing_with_a_garbage_since_raises_and_keeps_nothing(
    start_hub: StartHub, account_id: str
) -> None:
    hub = await start_hub()
    with pytest.raises(InvalidEventId):
        await hub.subscribe(account_id, since="yesterday")
    assert hub.subscriber_count(account_id) == 0
    assert hub.stats.subscribers == 0


async def test_a_subscriber_that_never_reads_is_dropped_while_another_gets_every_event(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub(client_buffer_events=8)
    stalled = await hub.subscribe(account_id)
    reading = await hub.subscribe(account_id)
    total = 40
    reader = asyncio.create_task(next_ids(reading, total))

    published = [await publish(aredis, account_id, created(n)) for n in range(total)]

    assert await reader == published
    await asyncio.wait_for(stalled.dropped.wait(), 5)
    assert stalled.dropped_slow
    assert stalled.buffered == 0  # its backlog is freed, not kept for a socket about to close
    with pytest.raises(SubscriberDropped) as raised:
        await next_frame(stalled)
    assert raised.value.reason == "slow"
    assert hub.stats.slow_subscribers_dropped == 1
    assert hub.subscriber_count(account_id) == 1


async def test_an_unsubscribed_socket_is_forgotten(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub()
    gone = await hub.subscribe(account_id)
    staying = await hub.subscribe(account_id)
    assert hub.stats.subscribers == 2

    hub.unsubscribe(gone)
    hub.unsubscribe(gone)
    event_id = await publish(aredis, account_id, created(1))

    assert await next_ids(staying, 1) == [event_id]
    assert gone.buffered == 0
    assert hub.stats.subscribers == 1
    assert hub.subscriber_count(account_id) == 1


async def test_stopping_the_hub_lets_go_of_its_subscribers(start_hub: StartHub, account_id: str) -> None:
    hub = await start_hub()
    sub = await hub.subscribe(account_id)

    await hub.stop()

    with pytest.raises(SubscriberDropped):
        await next_frame(sub)
    assert hub.disconnected.is_set()


async def test_a_stranger_message_on_an_inbox_channel_costs_nobody_their_events(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub()
    sub = await hub.subscribe(account_id)

    await aredis.publish(f"baton:inbox:{{{account_id}}}:live", b"not an event")
    event_id = await publish(aredis, account_id, created(1))

    assert await next_ids(sub, 1) == [event_id]
    assert hub.stats.connection_failures == 0


class _Socket:
    """A socket as the hub sees it: frames written at once (``write_now``, which can
    refuse like a transport pushing back) or by the socket's reader, onto one wire."""

    def __init__(self) -> None:
        self.wire: list[tuple[str, bytes]] = []  # (how, frame)
        self.accepting = True
        self._arrived = asyncio.Event()

    def write_now(self, frame: bytes) -> bool:
        if not self.accepting:
            return False
        self._put("direct", frame)
        return True

    async def read(self, sub: Subscriber) -> None:
        async for frame in sub:
            self._put("reader", frame)

    def _put(self, how: str, frame: bytes) -> None:
        self.wire.append((how, frame))
        self._arrived.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.wire) < count:
                self._arrived.clear()
                await self._arrived.wait()


async def test_live_frames_skip_a_parked_reader_and_keep_their_order_when_the_socket_pushes_back(
    start_hub: StartHub, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub()
    sub = await hub.subscribe(account_id)
    socket = _Socket()
    sub.attach_writer(socket.write_now)
    reader = asyncio.ensure_future(socket.read(sub))
    try:
        first = await publish(aredis, account_id, created(1))
        await socket.until(1)
        socket.accepting = False  # the client reads too slowly: frames queue for the reader
        pushed_back = [await publish(aredis, account_id, created(n)) for n in (2, 3)]
        await socket.until(3)
        socket.accepting = True
        last = await publish(aredis, account_id, created(4))
        await socket.until(4)
    finally:
        reader.cancel()

    assert [(how, decode_frame(frame)[0]) for how, frame in socket.wire] == [
        ("direct", first),
        ("reader", pushed_back[0]),
        ("reader", pushed_back[1]),
        ("direct", last),
    ]
