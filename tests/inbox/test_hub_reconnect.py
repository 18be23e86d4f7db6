"""The hub's loop survives Redis going away, and no connected subscriber misses an event.

Several tests block the event loop on purpose (a synchronous restart and ``publish_sync``)
so the hub cannot resubscribe before those events are published: they reach Redis while
the hub is not listening, exactly the gap the refill must close.
"""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from cli.embedded_redis import EmbeddedRedis
from inbox import publish, publish_sync

from .conftest import HUB_CONNECT_TIMEOUT_S, StartHub
from .helpers import created, next_ids

pytestmark = pytest.mark.asyncio

RECONNECT_TIMEOUT_S = 15.0
QUIET_ROUNDS = 8


async def test_after_a_redis_restart_missed_events_are_refilled_once_and_live_ones_flow(
    start_hub: StartHub,
    redis_server: EmbeddedRedis,
    redis_url: str,
    aredis: redis.asyncio.Redis,
    account_id: str,
) -> None:
    hub = await start_hub(reconnect_backoff_min_s=0.05)
    sub = await hub.subscribe(account_id)
    before = await publish(aredis, account_id, created(0))
    assert await next_ids(sub, 1) == [before]

    try:
        redis_server.stop()
    finally:
        redis_server.start()
    with redis.Redis.from_url(redis_url) as client:
        missed = [publish_sync(client, account_id, created(n)) for n in range(1, 4)]

    assert await next_ids(sub, 3, RECONNECT_TIMEOUT_S) == missed
    live = await publish(aredis, account_id, created(4))
    # The live event comes right after the refilled ones: nothing was delivered twice.
    assert await next_ids(sub, 1) == [live]
    assert hub.stats.reconnects == 1
    assert hub.stats.events_refilled == 3
    assert hub.subscriber_count(account_id) == 1


async def test_events_published_while_the_hub_backs_off_are_refilled(
    start_hub: StartHub,
    redis_server: EmbeddedRedis,
    redis_url: str,
    aredis: redis.asyncio.Redis,
    account_id: str,
) -> None:
    hub = await start_hub(reconnect_backoff_min_s=0.2)
    sub = await hub.subscribe(account_id)

    try:
        redis_server.stop()
        await asyncio.wait_for(hub.disconnected.wait(), RECONNECT_TIMEOUT_S)
    finally:
        redis_server.start()
    # Still blocking the loop: the hub is asleep in its backoff while these land.
    with redis.Redis.from_url(redis_url) as client:
        missed = [publish_sync(client, account_id, created(n)) for n in range(3)]

    assert await next_ids(sub, 3, RECONNECT_TIMEOUT_S) == missed
    await asyncio.wait_for(hub.connected.wait(), HUB_CONNECT_TIMEOUT_S)
    live = await publish(aredis, account_id, created(3))
    assert await next_ids(sub, 1) == [live]
    assert hub.stats.connection_failures >= 1
    assert hub.stats.events_refilled == 3


async def test_a_killed_subscription_is_replaced_and_its_gap_refilled_for_every_account(
    start_hub: StartHub, sync_redis: redis.Redis, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub(reconnect_backoff_min_s=0.05)
    first = await hub.subscribe(account_id)
    second = await hub.subscribe(account_id)
    other = await hub.subscribe("another-account")

    assert sync_redis.client_kill_filter(_type="pubsub") >= 1
    missed = [publish_sync(sync_redis, account_id, created(n)) for n in range(5)]
    missed_other = publish_sync(sync_redis, "another-account", created(5))

    assert await next_ids(first, 5, RECONNECT_TIMEOUT_S) == missed
    assert await next_ids(second, 5) == missed
    assert await next_ids(other, 1) == [missed_other]
    live = await publish(aredis, account_id, created(6))
    assert await next_ids(first, 1) == [live]
    assert await next_ids(second, 1) == [live]
    assert hub.stats.reconnects == 1
    assert hub.stats.events_refilled == 11


async def test_a_subscription_that_goes_silent_is_noticed_and_replaced(
    start_hub: StartHub, sync_redis: redis.Redis, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub(ping_interval_s=0.1, pong_timeout_s=0.2, reconnect_backoff_min_s=0.05)
    sub = await hub.subscribe(account_id)

    # CLIENT PAUSE ALL: the connection stays open but Redis answers nothing, like a peer
    # behind a dead NAT entry. Only the hub's own PING deadline can notice.
    sync_redis.client_pause(1500, all=True)
    await asyncio.wait_for(hub.disconnected.wait(), RECONNECT_TIMEOUT_S)
    await asyncio.wait_for(hub.connected.wait(), RECONNECT_TIMEOUT_S)

    live = await publish(aredis, account_id, created(1))
    assert await next_ids(sub, 1) == [live]
    assert hub.stats.connection_failures >= 1


async def test_a_quiet_but_healthy_subscription_is_kept(
    start_hub: StartHub, redis_url: str, aredis: redis.asyncio.Redis, account_id: str
) -> None:
    hub = await start_hub(ping_interval_s=0.05, pong_timeout_s=0.1)
    sub = await hub.subscribe(account_id)

    # The hub PINGs a quiet subscription again only once its last PING was answered
    # (Hub._pump): its next QUIET_ROUNDS PINGs, as Redis sees them, are that many quiet
    # intervals passed, several pong timeouts in all, with nothing to read but PONGs.
    await asyncio.wait_for(_pings_seen(redis_url, QUIET_ROUNDS), RECONNECT_TIMEOUT_S)
    event_id = await publish(aredis, account_id, created(1))

    assert await next_ids(sub, 1) == [event_id]
    assert hub.stats.connection_failures == 0
    assert hub.stats.reconnects == 0


async def _pings_seen(redis_url: str, count: int) -> None:
    """Returns once Redis has run ``count`` more PINGs (MONITOR: every command it runs)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        async with client.monitor() as monitor:
            seen = 0
            while seen < count:
                seen += (await monitor.next_command())["command"].upper() == "PING"
    finally:
        await client.aclose()
