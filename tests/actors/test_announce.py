"""A create committed while Redis is down still reaches every inbox, once Redis is back:
its ``announce_events`` outbox job publishes what the web could not, and only that."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio
from websockets.asyncio.client import connect

from inbox import keys
from tests.api.conftest import API, new_tenant
from tests.conftest import BatonProcesses
from tests.fakes.tcp_proxy import TcpProxy

from .conftest import announcements_sent, eventually, worker_env

WAIT_S = 30


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(redis_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


async def _stream(redis_url: str, account_id: object) -> list[dict[str, Any]]:
    """The account's inbox events as they stand in its Redis stream, oldest first."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(keys.stream(account_id), "-", "+")
    finally:
        await client.aclose()
    return [json.loads(fields[b"e"]) for _, fields in entries]


async def _created_events(redis_url: str, account_id: object) -> list[str]:
    return [e["handoff_id"] for e in await _stream(redis_url, account_id) if e["type"] == "handoff_created"]


async def test_a_create_the_web_could_not_announce_is_announced_once_when_redis_is_back(
    baton: BatonProcesses, db: asyncpg.Connection, redis_url: str, redis_proxy: TcpProxy
) -> None:
    server = baton.serve(env={"REDIS_URL": redis_proxy.url})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http)
        tech = await acme.user(name="Tess Tech")
        senior = await acme.user("engineer")
        announced = await acme.handed_off(tech, await acme.session(tech), "escalate")
        redis_proxy.down()
        unannounced = await acme.handed_off(tech, await acme.session(tech), "park")
    assert "its outbox job will" in server.log()
    assert await _created_events(redis_url, acme.account_id) == [announced["id"]]

    redis_proxy.up()
    worker = baton.worker(env=worker_env())

    # Both creates' rows relayed: the first one's found its event out and added nothing.
    await eventually(
        lambda: announcements_sent(db, acme.account_id, 2), WAIT_S, "the relay's announcements", worker.log
    )
    assert await _created_events(redis_url, acme.account_id) == [announced["id"], unannounced["id"]]

    # A senior who reconnects with since= gets it like any other event.
    url = server.base_url.replace("http://", "ws://") + f"{API}/inbox?since=0-0"
    token = senior.headers["Authorization"].removeprefix("Bearer ")
    created: list[str] = []
    async with connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        while len(created) < 2:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if frame["type"] == "handoff_created":
                created.append(frame["handoff_id"])
    assert created == [announced["id"], unannounced["id"]]


async def _events_of(redis_url: str, account_id: object, types: set[str]) -> list[tuple[str, str]]:
    return [(e["type"], e["handoff_id"]) for e in await _stream(redis_url, account_id) if e["type"] in types]


async def test_a_claim_and_a_release_made_while_redis_is_down_reach_the_inbox_once_when_it_is_back(
    baton: BatonProcesses, db: asyncpg.Connection, redis_url: str, redis_proxy: TcpProxy
) -> None:
    server = baton.serve(env={"REDIS_URL": redis_proxy.url})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http)
        tech = await acme.user(name="Tess Tech")
        senior = await acme.user("engineer", name="Sam Senior")
        handoff = await acme.handed_off(tech, await acme.session(tech), "escalate")
        redis_proxy.down()
        claimed = await http.post(f"{API}/handoffs/{handoff['id']}/claim", headers=senior.headers)
        released = await http.post(f"{API}/handoffs/{handoff['id']}/release", headers=senior.headers)
    assert (claimed.status_code, released.status_code) == (200, 200)
    moves = {"handoff_claimed", "handoff_released"}
    assert await _events_of(redis_url, acme.account_id, moves) == []

    redis_proxy.up()
    worker = baton.worker(env=worker_env())

    # The create's row, the claim's and the release's, relayed in commit order.
    await eventually(
        lambda: announcements_sent(db, acme.account_id, 3), WAIT_S, "the relay's announcements", worker.log
    )
    assert await _events_of(redis_url, acme.account_id, moves) == [
        ("handoff_claimed", handoff["id"]),
        ("handoff_released", handoff["id"]),
    ]
    claimed_event = next(
        e for e in await _stream(redis_url, acme.account_id) if e["type"] == "handoff_claimed"
    )
    assert claimed_event["claimed_by_name"] == "Sam Senior"
    assert claimed_event["claimed_at"] == claimed.json()["claimed_at"]
