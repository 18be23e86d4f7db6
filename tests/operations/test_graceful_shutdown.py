"""Stopping gracefully: a web replica closes its websockets with 1012 (so clients reconnect
elsewhere), and a worker pool finishes the message in hand and leaves the rest queued."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import asyncpg
import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from inbox import publish_sync
from tests.api.conftest import API, new_tenant
from tests.conftest import BatonProcesses, wait_for
from tests.server.test_inbox_socket import event

STOP_TIMEOUT_S = 15.0


async def test_a_stopping_replica_closes_its_inbox_sockets_with_1012_and_they_resume_elsewhere(
    baton: BatonProcesses, db: asyncpg.Connection, redis_url: str
) -> None:
    stopping, staying = baton.serve(), baton.serve()
    async with httpx.AsyncClient(base_url=stopping.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        senior = await acme.user("engineer")
    token = senior.headers["Authorization"].removeprefix("Bearer ")
    publisher = redis.Redis.from_url(redis_url)

    def url(server: object, since: str | None = None) -> str:
        base = server.base_url.replace("http://", "ws://") + f"{API}/inbox"  # type: ignore[attr-defined]
        return f"{base}?since={since}" if since else base

    async with connect(url(stopping)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "hello"
        seen = publish_sync(publisher, acme.account_id, event(1))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["id"] == seen

        stopping.process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), STOP_TIMEOUT_S)
        assert closed.value.rcvd is not None, "the connection dropped without a close frame"
        assert closed.value.rcvd.code == 1012
    # uvicorn re-raises the SIGTERM it handled once it is done, so the code is -15.
    stopping.process.wait(STOP_TIMEOUT_S)
    assert "Application shutdown complete." in stopping.log()

    # What was published while the client was away reaches it on the other replica.
    missed = publish_sync(publisher, acme.account_id, event(2))
    async with connect(url(staying, since=seen)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "hello"
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["id"] == missed
    publisher.close()


def test_a_stopping_worker_finishes_the_message_in_hand_and_leaves_the_next_queued(
    baton: BatonProcesses, redis_url: str
) -> None:
    from actors.maintenance import PING_KEY, PING_STARTED_KEY, ping_worker

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    in_hand, queued = uuid.uuid4().hex, uuid.uuid4().hex
    worker = baton.worker(threads=1)
    ping_worker.send(in_hand, hold_s=3)
    ping_worker.send(queued, hold_s=0)
    wait_for(
        lambda: client.get(PING_STARTED_KEY.format(token=in_hand)) is not None,
        30,
        f"the worker to take the first message:\n{worker.log()}",
    )
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(STOP_TIMEOUT_S + 30) == 0, worker.log()
    assert client.get(PING_KEY.format(token=in_hand)) is not None, "the message in hand was not finished"

    # The one it had not started is still queued, and the next pool does it.
    after = baton.worker(threads=1)
    wait_for(
        lambda: client.get(PING_KEY.format(token=queued)) is not None,
        30,
        f"the queued message to be done by the next worker:\n{after.log()}",
    )
    client.close()
