"""WS /api/v1/inbox against real `baton serve` processes, real Redis and a real
websocket client (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
import socket as sockets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from inbox import HandoffCreated, publish_sync
from server.tokens import mint_service_token, mint_user_token
from tests.conftest import TEST_JWT_SECRET, BatonProcess, BatonProcesses

FRAME_TIMEOUT_S = 10.0


async def make_user(db: asyncpg.Connection, account_id: uuid.UUID | None = None) -> tuple[str, str]:
    """(account id, user token) of a new active engineer, in a new account unless given."""
    if account_id is None:
        account_id = uuid.uuid4()
        await db.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Acme')", account_id)
    user_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO users (id, account_id, email, name, account_role) "
        "VALUES ($1, $2, 'e@x.example', 'Eli', 'engineer')",
        user_id,
        account_id,
    )
    return str(account_id), mint_user_token(TEST_JWT_SECRET, user_id)


def event(n: int, notes: str = "") -> HandoffCreated:
    return HandoffCreated(
        handoff_id=str(uuid.UUID(int=n)),
        session_id=str(uuid.uuid4()),
        intent="escalate",
        priority="high",
        engineer_notes=notes or f"note {n}",
        problem_summary="Printer offline",
        created_at="2026-11-25T12:00:00+00:00",
    )


def ws_url(server: BatonProcess, since: str | None = None) -> str:
    url = server.base_url.replace("http://", "ws://") + "/api/v1/inbox"
    return f"{url}?since={since}" if since else url


@asynccontextmanager
async def inbox(
    server: BatonProcess, token: str, *, since: str | None = None, **options: Any
) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    """A socket signed in with the first-message auth, and the server's hello."""
    async with connect(ws_url(server, since), **options) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        hello = json.loads(await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT_S))
        assert hello["type"] == "hello"
        yield socket, hello


async def receive(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT_S)) for _ in range(count)]


async def close_code(socket: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT_S)
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


async def test_an_event_reaches_the_account_on_every_replica_and_no_other_account(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    replica_a, replica_b = baton.serve(), baton.serve()
    account, token_a = await make_user(db)
    _, token_b = await make_user(db, uuid.UUID(account))
    stranger_account, stranger = await make_user(db)
    async with (
        inbox(replica_a, token_a) as (on_a, hello_a),
        inbox(replica_b, token_b) as (on_b, hello_b),
        inbox(replica_b, stranger) as (other_account, _),
    ):
        assert hello_a["account_id"] == hello_b["account_id"] == account
        event_id = publish_sync(redis_client, account, event(1))
        for socket in (on_a, on_b):
            [frame] = await receive(socket, 1)
            assert frame["id"] == event_id
            assert frame["type"] == "handoff_created"
            assert frame["handoff_id"] == str(uuid.UUID(int=1))
        # The other account's next frame is its own event: ours never reached it.
        own_id = publish_sync(redis_client, stranger_account, event(2))
        [frame] = await receive(other_account, 1)
        assert frame["id"] == own_id
        assert frame["handoff_id"] == str(uuid.UUID(int=2))


async def test_a_client_that_was_away_gets_exactly_what_it_missed_then_live_events(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    account, token = await make_user(db)
    async with inbox(server, token) as (socket, _):
        seen = publish_sync(redis_client, account, event(0))
        assert (await receive(socket, 1))[0]["id"] == seen
    missed = [publish_sync(redis_client, account, event(n)) for n in range(1, 6)]
    async with inbox(server, token, since=seen) as (socket, hello):
        assert hello["last_event_id"] == missed[-1]
        replayed = await receive(socket, 5)
        assert [f["id"] for f in replayed] == missed
        assert [f["handoff_id"] for f in replayed] == [str(uuid.UUID(int=n)) for n in range(1, 6)]
        live = publish_sync(redis_client, account, event(6))
        assert (await receive(socket, 1))[0]["id"] == live


async def test_a_since_older_than_the_kept_history_is_told_to_resync(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    account, token = await make_user(db)
    first = publish_sync(redis_client, account, event(0), history_max_events=10)
    for n in range(1, 400):  # MAXLEN ~ trims in whole stream nodes of 100 entries
        publish_sync(redis_client, account, event(n), history_max_events=10)
    async with inbox(server, token, since=first) as (socket, _):
        assert await receive(socket, 1) == [{"type": "resync"}]
        live = publish_sync(redis_client, account, event(500))
        assert (await receive(socket, 1))[0]["id"] == live


async def test_clients_keep_receiving_across_a_redis_restart_without_reconnecting(
    baton: BatonProcesses, db: asyncpg.Connection, tmp_path: Path
) -> None:
    own_redis = EmbeddedRedis(tmp_path / "redis", free_port(), durable=True)
    own_redis.start()
    try:
        server = baton.serve(env={"REDIS_URL": own_redis.url})
        account, token = await make_user(db)
        async with inbox(server, token) as (socket, _):
            client = redis.Redis.from_url(own_redis.url)
            before = publish_sync(client, account, event(0))
            assert (await receive(socket, 1))[0]["id"] == before
            client.close()

            own_redis.stop()
            own_redis.start()
            # Published as soon as Redis is back, likely before the hub has resubscribed:
            # these can only arrive through the hub's refill from the stream.
            client = redis.Redis.from_url(own_redis.url)
            during = [publish_sync(client, account, event(n)) for n in range(1, 4)]
            got = await receive(socket, 3)
            assert [f["id"] for f in got] == during
            after = publish_sync(client, account, event(4))
            assert (await receive(socket, 1))[0]["id"] == after
            client.close()
    finally:
        own_redis.stop()


async def test_a_bad_token_is_closed_with_4401(baton: BatonProcesses) -> None:
    server = baton.serve()
    forged = mint_user_token("not-the-secret-" * 4, uuid.uuid4())
    async with connect(ws_url(server)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": forged}))
        assert await close_code(socket) == 4401


async def test_a_token_of_nobody_we_know_is_closed_with_4401(baton: BatonProcesses) -> None:
    server = baton.serve()
    async with connect(
        ws_url(server),
        additional_headers={"Authorization": f"Bearer {mint_user_token(TEST_JWT_SECRET, uuid.uuid4())}"},
    ) as socket:
        assert await close_code(socket) == 4401


async def test_a_service_token_cannot_open_the_inbox(baton: BatonProcesses) -> None:
    server = baton.serve()
    async with connect(ws_url(server)) as socket:
        await socket.send(
            json.dumps({"type": "auth", "token": mint_service_token(TEST_JWT_SECRET, uuid.uuid4())})
        )
        assert await close_code(socket) == 4401


async def test_no_auth_within_the_time_limit_is_closed_with_4401(baton: BatonProcesses) -> None:
    server = baton.serve()
    async with connect(ws_url(server)) as socket:
        assert await close_code(socket) == 4401


async def test_a_header_token_works_for_non_browser_clients(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    account, token = await make_user(db)
    async with connect(ws_url(server), additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT_S))
        assert hello == {"type": "hello", "account_id": account, "last_event_id": "0-0"}


async def test_a_foreign_origin_is_closed_with_4403(baton: BatonProcesses, db: asyncpg.Connection) -> None:
    server = baton.serve()
    _, token = await make_user(db)
    # Refused before auth: the server does not wait for the token.
    async with connect(
        ws_url(server),
        origin="https://evil.example",  # type: ignore[arg-type]
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as socket:
        assert await close_code(socket) == 4403


async def test_an_allowed_origin_and_the_servers_own_origin_are_accepted(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve(env={"BATON_ALLOWED_ORIGINS": "https://helpdesk.example"})
    _, token = await make_user(db)
    for origin in ("https://helpdesk.example", server.base_url):
        async with inbox(server, token, origin=origin) as (_, hello):
            assert hello["type"] == "hello"


async def test_a_client_that_never_reads_is_dropped_while_the_others_keep_receiving(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    account, token = await make_user(db)
    big_notes = "x" * 3900
    total = 2500  # ~10 MB: more than the server's send buffer (≤ 4 MiB) and the hub's buffer
    # Without compression, so that the notes' bytes really cross the wire.
    # A stalled client: a small fixed receive buffer (no autotuning up to 32 MiB), and a
    # library that stops reading the socket once one frame waits.
    tiny = sockets.socket()
    tiny.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 16 * 1024)
    tiny.connect(("127.0.0.1", server.port or 0))
    async with (
        inbox(server, token, compression=None) as (reader, _),
        inbox(server, token, max_queue=1, sock=tiny, compression=None) as (stalled, _),
    ):

        async def read_all() -> list[str]:
            return [
                json.loads(await asyncio.wait_for(reader.recv(), FRAME_TIMEOUT_S))["id"] for _ in range(total)
            ]

        reading = asyncio.ensure_future(read_all())
        # Published from a thread, so that the good reader keeps reading meanwhile.
        published = await asyncio.to_thread(
            lambda: [publish_sync(redis_client, account, event(n, big_notes)) for n in range(total)]
        )
        assert await reading == published

        # The stalled one is closed with 1013 once it reads again: everything queued for
        # it is far less than what was published.
        received = 0
        code = None
        while code is None:
            try:
                await asyncio.wait_for(stalled.recv(), FRAME_TIMEOUT_S)
                received += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else -1
        assert code == 1013
        assert received < total
