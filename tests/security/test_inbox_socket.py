"""The inbox websocket's security rules (SPEC, Second edition → Security rules →
"Websocket" and "Tokens"), against real ``baton serve`` processes:

- before auth one text frame of at most 4 KiB, after auth frames of at most 16 KiB,
  anything larger closed with 1009 without being buffered (issue 12, finding 2);
- a socket closed with 4401 when its token expires, and with 4403 within 5 s on every
  replica when its user is deactivated or deleted (finding 5);
- a fresh ``{"type": "auth", "token"}`` before expiry carries the socket on (finding 10).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from inbox import publish_sync
from server.tokens import mint_service_token, mint_user_token
from tests.api.conftest import Person, Tenant, new_tenant
from tests.conftest import TEST_JWT_SECRET, BatonProcess, BatonProcesses
from tests.security import raw_websocket as raw
from tests.server.test_inbox_socket import event, ws_url

FRAME_TIMEOUT_S = 10.0
PRE_AUTH_MAX_BYTES = 4 * 1024
POST_AUTH_MAX_BYTES = 16 * 1024
TOKEN_TTL_S = 3600
REVOKED_WITHIN_S = 5.0  # SPEC: "closed with 4403 within 5 s … on every replica"
HUGE_FRAME_BYTES = 16 * 1024 * 1024  # uvicorn's default max, which the probe sent
HUGE_FRAME_CONNECTIONS = 20
RSS_GROWTH_MAX_BYTES = 50 * 1024 * 1024
SEND_CHUNK_BYTES = 256 * 1024


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def token_of(person: Person, ttl_s: int = TOKEN_TTL_S) -> str:
    return mint_user_token(TEST_JWT_SECRET, person.id, ttl_s=ttl_s)


@asynccontextmanager
async def tenant_on(server: BatonProcess, db: asyncpg.Connection) -> AsyncIterator[Tenant]:
    """An account built through the host-app API of a real replica."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=FRAME_TIMEOUT_S) as client:
        yield await new_tenant(db, client)


@asynccontextmanager
async def inbox(server: BatonProcess, token: str) -> AsyncIterator[ClientConnection]:
    """A socket past its hello (first-message auth, no compression: sizes are sizes)."""
    async with connect(ws_url(server), compression=None, max_size=None) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        hello = json.loads(await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT_S))
        assert hello["type"] == "hello", hello
        yield socket


async def next_json(socket: ClientConnection, timeout_s: float = FRAME_TIMEOUT_S) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout_s))
    return decoded


async def ending(
    socket: ClientConnection, timeout_s: float = FRAME_TIMEOUT_S
) -> tuple[int | None, list[Any]]:
    """(the server's close code, the frames it sent until then)."""
    frames: list[Any] = []
    while True:
        try:
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), timeout_s)))
        except ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else None), frames


async def still_open_for(socket: ClientConnection, duration_s: float) -> None:
    """Nothing arrives, and the socket is not closed, for ``duration_s``."""
    try:
        frame = await asyncio.wait_for(socket.recv(), duration_s)
    except TimeoutError:
        return
    pytest.fail(f"unexpected frame {frame!r}")


def expiry_of(token: str) -> float:
    """The token's exp, read as the client sees it (also once it has passed)."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


def padded_auth(token: str, size_bytes: int) -> str:
    """An auth message of exactly ``size_bytes`` (JSON allows whitespace anywhere)."""
    message = json.dumps({"type": "auth", "token": token})
    return message[:-1] + " " * (size_bytes - len(message)) + "}"


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since the process started), in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


# ------------------------------------------------------------ finding 2: frame sizes


async def _send_huge_frame_before_auth(port: int) -> raw.Ending:
    socket = await raw.RawSocket.open(port)
    try:
        ending = asyncio.ensure_future(socket.ending())  # read while writing, as a client does
        sent = await socket.send(raw.header(raw.OP_TEXT, HUGE_FRAME_BYTES))
        chunk = b"x" * SEND_CHUNK_BYTES
        for _ in range(HUGE_FRAME_BYTES // SEND_CHUNK_BYTES):
            if not sent or ending.done():
                break
            sent = await socket.send(chunk)
        return await ending
    finally:
        await socket.close()


async def test_twenty_16_mib_frames_before_auth_leave_the_servers_memory_where_it_was(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    async with inbox(server, token_of(senior)):
        pass  # one socket served end to end, so the baseline includes what that costs
    before = memory_kib(server.process.pid)

    endings = await asyncio.gather(
        *(_send_huge_frame_before_auth(server.port or 0) for _ in range(HUGE_FRAME_CONNECTIONS))
    )

    after = memory_kib(server.process.pid)
    print(
        f"VmRSS before {before['VmRSS']} KiB; after: VmRSS {after['VmRSS']} KiB, peak {after['VmHWM']} KiB;"
        f" close codes {[e.code for e in endings]}"
    )
    # The peak counts too: memory handed back afterwards was still taken from the host.
    assert (after["VmHWM"] - before["VmRSS"]) * 1024 < RSS_GROWTH_MAX_BYTES, (before, after)
    # Each was told why: 1009, the close frame read by a client still busy writing.
    assert [(e.code, e.frames) for e in endings] == [(1009, [])] * HUGE_FRAME_CONNECTIONS, endings
    # And the replica still serves.
    async with inbox(server, token_of(senior)) as socket:
        account = str(tenant.account_id)
        event_id = publish_sync(redis_client, account, event(1))
        assert (await next_json(socket))["id"] == event_id


async def test_a_header_announcing_16_mib_before_auth_is_closed_1009_before_any_payload(
    baton: BatonProcesses,
) -> None:
    server = baton.serve()
    socket = await raw.RawSocket.open(server.port or 0)
    try:
        await socket.send(raw.header(raw.OP_TEXT, HUGE_FRAME_BYTES))
        # Well within the 5 s the server waits for an auth message: not a timeout.
        ended = await socket.ending(timeout_s=2.0)
    finally:
        await socket.close()
    assert ended.code == 1009, ended


async def test_a_4_kib_first_message_is_read_and_one_byte_more_closes_1009(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    token = token_of(senior)
    async with connect(ws_url(server), compression=None) as socket:
        await socket.send(padded_auth(token, PRE_AUTH_MAX_BYTES))
        assert (await next_json(socket))["type"] == "hello"
    async with connect(ws_url(server), compression=None) as socket:
        await socket.send(padded_auth(token, PRE_AUTH_MAX_BYTES + 1))
        assert await ending(socket) == (1009, [])


async def test_after_auth_16_kib_is_read_and_one_byte_more_closes_1009(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    account = str(tenant.account_id)
    async with inbox(server, token_of(senior)) as socket:
        # A message of a type this server does not know (yet) is ignored, whatever its size.
        filler = json.dumps({"type": "future", "data": ""})
        await socket.send(filler[:-2] + "x" * (POST_AUTH_MAX_BYTES - len(filler)) + '"}')
        event_id = publish_sync(redis_client, account, event(1))
        assert (await next_json(socket))["id"] == event_id

        await socket.send("x" * (POST_AUTH_MAX_BYTES + 1))
        assert await ending(socket) == (1009, [])


async def test_after_auth_fragments_adding_up_past_16_kib_close_1009(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    socket = await raw.RawSocket.open(server.port or 0)
    try:
        await socket.authenticate(token_of(senior))
        piece = b"x" * 4096
        await socket.send(raw.text(piece, fin=False))
        for _ in range(4):
            await socket.send(raw.frame(raw.OP_CONT, piece, fin=False))
        ended = await socket.ending()
    finally:
        await socket.close()
    assert ended.code == 1009, ended


# ------------------------------------------------------------ finding 5: stale sockets


async def _revoked_on_both_replicas(
    baton: BatonProcesses,
    db: asyncpg.Connection,
    revoke: Any,
) -> None:
    """A senior with a socket on each of two replicas, and a colleague watching too;
    ``revoke(tenant, senior)`` takes the senior away; then a hand-off is created."""
    replica_a, replica_b = baton.serve(), baton.serve()
    async with tenant_on(replica_a, db) as tenant:
        senior = await tenant.user("engineer", "Sam Senior")
        colleague = await tenant.user("engineer", "Cole League")
        technician = await tenant.user("technician", "Tess Tech")
        session_id = await tenant.session(technician)
        async with (
            inbox(replica_a, token_of(senior)) as on_a,
            inbox(replica_b, token_of(senior)) as on_b,
            inbox(replica_b, token_of(colleague)) as colleague_on_b,
        ):
            revoked_at = time.monotonic()
            await revoke(tenant, senior)
            (code_a, frames_a), (code_b, frames_b) = await asyncio.gather(ending(on_a), ending(on_b))
            closed_after_s = time.monotonic() - revoked_at
            print(f"closed {code_a} / {code_b} after {closed_after_s:.2f} s")
            assert (code_a, code_b) == (4403, 4403)
            assert closed_after_s < REVOKED_WITHIN_S
            assert frames_a == frames_b == []

            # The next hand-off (notes and all) reaches the colleague, and nobody else:
            # the senior's sockets are gone on both replicas.
            created = await tenant.handed_off(technician, session_id, engineer_notes="router creds in vault")
            frame = await next_json(colleague_on_b)
            assert frame["type"] == "handoff_created"
            assert frame["handoff_id"] == created["id"]


async def test_a_deactivated_users_sockets_close_4403_on_every_replica_within_5_s(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    async def deactivate(tenant: Tenant, senior: Person) -> None:
        body = {
            "email": "sam@example.com",
            "name": senior.name,
            "account_role": "engineer",
            "is_active": False,
        }
        answer = await tenant.put(f"/users/{senior.id}", body)
        assert answer.status_code == 200, answer.text

    await _revoked_on_both_replicas(baton, db, deactivate)


async def test_a_deleted_users_sockets_close_4403_on_every_replica_within_5_s(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    async def delete(tenant: Tenant, senior: Person) -> None:
        # The host app has no DELETE: it marks the row, as it does in its own database.
        await db.execute("UPDATE users SET deleted_at = now() WHERE id = $1", senior.id)

    await _revoked_on_both_replicas(baton, db, delete)


async def test_a_socket_is_closed_4401_when_its_token_expires(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    token = mint_user_token(TEST_JWT_SECRET, senior.id, ttl_s=2)
    async with inbox(server, token) as socket:
        code, frames = await ending(socket)
        closed_at = time.time()
    print(f"closed {code} {closed_at - expiry_of(token):+.2f} s from the token's exp")
    assert (code, frames) == (4401, [])
    assert 0 <= closed_at - expiry_of(token) < 1.0


async def test_a_reauth_before_expiry_carries_the_socket_on_until_the_new_token_expires(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    account = str(tenant.account_id)
    first, second = mint_user_token(TEST_JWT_SECRET, senior.id, ttl_s=2), token_of(senior, ttl_s=5)
    async with inbox(server, first) as socket:
        await socket.send(json.dumps({"type": "auth", "token": second}))
        # Past the first token's expiry: still open, and still live.
        await still_open_for(socket, expiry_of(first) + 1.0 - time.time())
        event_id = publish_sync(redis_client, account, event(1))
        assert (await next_json(socket))["id"] == event_id
        # The new token's expiry is the one that counts now.
        code, frames = await ending(socket)
        assert (code, frames) == (4401, [])
        assert 0 <= time.time() - expiry_of(second) < 1.0


@pytest.mark.parametrize("whose", ["another user", "another account's user", "the host app"])
async def test_a_reauth_with_a_token_that_is_not_the_users_own_closes_4401(
    baton: BatonProcesses, db: asyncpg.Connection, whose: str
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant, tenant_on(server, db) as stranger:
        senior = await tenant.user("engineer")
        colleague = await tenant.user("engineer")
        outsider = await stranger.user("engineer")
    other = {
        "another user": token_of(colleague),
        "another account's user": token_of(outsider),
        "the host app": mint_service_token(TEST_JWT_SECRET, tenant.account_id),
    }[whose]
    async with inbox(server, token_of(senior)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": other}))
        assert await ending(socket) == (4401, [])


async def test_a_reauth_with_an_invalid_token_closes_4401(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    forged = mint_user_token("not-the-secret-" * 4, senior.id)
    async with inbox(server, token_of(senior)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": forged}))
        assert await ending(socket) == (4401, [])


# ------------------------------------------------------------ after auth: what a client may send


async def test_after_auth_an_unknown_message_type_is_ignored_and_a_malformed_message_closes_4400(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    account = str(tenant.account_id)
    async with inbox(server, token_of(senior)) as socket:
        await socket.send(json.dumps({"type": "viewing", "handoff_id": str(uuid.uuid4())}))
        event_id = publish_sync(redis_client, account, event(1))
        assert (await next_json(socket))["id"] == event_id
    for malformed in ("not json", "[1, 2]", '{"no": "type"}', '{"type": 7}', '{"type": "auth"}'):
        async with inbox(server, token_of(senior)) as socket:
            await socket.send(malformed)
            code, _ = await ending(socket)
            assert code == (4401 if "auth" in malformed else 4400), malformed


async def test_a_binary_message_is_closed_1003(baton: BatonProcesses, db: asyncpg.Connection) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    async with inbox(server, token_of(senior)) as socket:
        await socket.send(b'{"type": "auth"}')
        assert await ending(socket) == (1003, [])


async def test_a_flood_of_messages_closes_that_socket_1008_and_the_others_keep_receiving(
    baton: BatonProcesses, db: asyncpg.Connection, redis_client: redis.Redis
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        senior = await tenant.user("engineer")
    account = str(tenant.account_id)
    async with inbox(server, token_of(senior)) as bystander, inbox(server, token_of(senior)) as flooder:
        message = json.dumps({"type": "future"})
        for _ in range(2000):
            try:
                await flooder.send(message)
            except ConnectionClosed:
                break
        code, _ = await ending(flooder)
        assert code == 1008
        event_id = publish_sync(redis_client, account, event(1))
        assert (await next_json(bystander))["id"] == event_id
