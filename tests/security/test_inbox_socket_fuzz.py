"""A fuzz pass of the inbox websocket (issue 12, "Tests"): raw RFC 6455 frames over plain
TCP against a real ``baton serve`` — malformed frames, oversize frames, floods, binary
frames, half-open connections, then seeded random frame sequences — before and after
auth. Each connection must be closed by the server with a sane code (or, when the client
half-closed, simply ended); the server must never crash or log a traceback or an ERROR
for a client's garbage; and a well-behaved socket opened alongside must still receive
an event published afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import redis

from inbox import publish_sync
from server.tokens import mint_user_token
from tests.conftest import TEST_JWT_SECRET, BatonProcess, BatonProcesses
from tests.security import raw_websocket as raw
from tests.security.test_inbox_socket import inbox, next_json, tenant_on
from tests.server.test_inbox_socket import event

SEED = 20261203
RANDOM_CONNECTIONS = 40  # of each kind: before and after auth
AUTH_TIMEOUT_S = 5.0  # the server's wait for a first message
ENDED_WITHIN_S = 10.0
# What a server may answer garbage with (None: no close frame, after the client's FIN).
SANE_CODES = frozenset({None, 1000, 1002, 1003, 1007, 1008, 1009, 4400, 4401})
FRAMES_FLOOD = 500
TOKEN_TTL_S = 3600
USERS = 4  # authenticated connections are spread over a few users' connect budgets


@dataclass(frozen=True)
class Case:
    name: str
    authenticated: bool
    send: Callable[[raw.RawSocket], Awaitable[None]]
    expected: frozenset[int | None]


def sends(*frames: bytes, half_close: bool = False) -> Callable[[raw.RawSocket], Awaitable[None]]:
    async def send(socket: raw.RawSocket) -> None:
        await socket.send(b"".join(frames))
        if half_close:
            socket.half_close()

    return send


def both(name: str, *frames: bytes, expected: set[int | None], half_close: bool = False) -> list[Case]:
    """The same bytes before auth (in place of the auth message) and after it."""
    send = sends(*frames, half_close=half_close)
    return [
        Case(f"{name} (before auth)", False, send, frozenset(expected)),
        Case(name, True, send, frozenset(expected)),
    ]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def structured_cases() -> list[Case]:
    ping = raw.frame(raw.OP_PING, b"p")
    cases = [
        *both("a reserved opcode", raw.frame(0x3, b"x"), expected={1002}),
        *both("a reserved control opcode", raw.frame(0xB, b"x"), expected={1002}),
        *both("RSV1 set", raw.text("{}", rsv=4), expected={1002}),
        *both("RSV2 and RSV3 set", raw.text("{}", rsv=3), expected={1002}),
        *both("an unmasked client frame", raw.text("{}", masked=False), expected={1002}),
        *both("invalid UTF-8 text", raw.text(b'{"type": "\xff\xfe"}'), expected={1007}),
        *both(
            "invalid UTF-8 split across fragments",
            raw.text(b'"\xe2\x82', fin=False),
            raw.frame(raw.OP_CONT, b'\x28"'),
            expected={1007},
        ),
        *both("a fragmented ping", raw.frame(raw.OP_PING, b"p", fin=False), expected={1002}),
        *both("a ping over 125 bytes", raw.frame(raw.OP_PING, b"p" * 126), expected={1002}),
        *both("a continuation with no start", raw.frame(raw.OP_CONT, b"x"), expected={1002}),
        *both(
            "a new message inside a fragmented one",
            raw.text(b"{", fin=False),
            raw.text(b"}"),
            expected={1002},
        ),
        *both("a close with code 999", raw.frame(raw.OP_CLOSE, close_payload(999)), expected={1002}),
        *both("a close of one byte", raw.frame(raw.OP_CLOSE, b"\x03"), expected={1002}),
        *both(
            "a close reason not UTF-8", raw.frame(raw.OP_CLOSE, close_payload(1000, b"\xff")), expected={1007}
        ),
        *both("a plain close", raw.frame(raw.OP_CLOSE, close_payload(1000)), expected={1000}),
        *both("a binary frame", raw.frame(raw.OP_BINARY, b'{"type": "auth"}'), expected={1003}),
        *both("text that is not JSON", raw.text("hello?"), expected={4400, 4401}),
        *both(
            "a length that lies short, then our FIN",
            raw.header(raw.OP_TEXT, 100) + b"x" * 10,
            expected={None},
            half_close=True,
        ),
        *both("half a frame header, then our FIN", b"\x81", expected={None}, half_close=True),
        *both("a length of 2^63", raw.header(raw.OP_TEXT, 1 << 63), expected={1009}),
        *both("a header announcing 1 GiB", raw.header(raw.OP_BINARY, 1 << 30), expected={1009}),
        *both("a ping flood", ping * FRAMES_FLOOD, expected={1008}),
        *both("an unsolicited pong flood", raw.frame(raw.OP_PONG, b"p") * FRAMES_FLOOD, expected={1008}),
        Case("4 KiB + 1 before auth", False, sends(raw.text(b" " * 4097)), frozenset({1009})),
        Case(
            "fragments past 4 KiB before auth",
            False,
            sends(raw.text(b" " * 2048, fin=False), *[raw.frame(raw.OP_CONT, b" " * 2048, fin=False)] * 2),
            frozenset({1009}),
        ),
        Case("16 KiB + 1 after auth", True, sends(raw.text(b" " * (16 * 1024 + 1))), frozenset({1009})),
        Case(
            "fragments past 16 KiB after auth",
            True,
            sends(raw.text(b" " * 4096, fin=False), *[raw.frame(raw.OP_CONT, b" " * 4096, fin=False)] * 4),
            frozenset({1009}),
        ),
        Case(
            "a message flood after auth",
            True,
            sends(raw.text('{"type": "x"}') * FRAMES_FLOOD),
            frozenset({1008}),
        ),
        Case("a re-auth flood", True, sends(raw.auth_frame("not-a-token") * 3), frozenset({4401})),
        Case("a malformed message after auth", True, sends(raw.text("[1, 2]")), frozenset({4400})),
        Case("our FIN right after the handshake", False, sends(half_close=True), frozenset({None})),
        Case("our FIN right after auth", True, sends(half_close=True), frozenset({None})),
        # Half-open: connected, then silent. Before auth the server stops waiting.
        Case("silence after the handshake", False, sends(), frozenset({4401})),
    ]
    return cases


VALID_OPCODES = [raw.OP_TEXT, raw.OP_TEXT, raw.OP_TEXT, raw.OP_CONT, raw.OP_BINARY, raw.OP_PING, raw.OP_PONG]


def random_frame(rng: random.Random) -> bytes:
    """Mostly well-formed (so that a sequence gets past its first frame), sometimes not."""
    opcode = rng.choice(VALID_OPCODES) if rng.random() < 0.85 else rng.randrange(16)
    kind = rng.random()
    if kind < 0.4:
        message = {"type": rng.choice(["auth", "viewing", "x", ""]), "token": "t" * rng.randint(0, 40)}
        data = json.dumps(message).encode()
    elif kind < 0.6:
        data = rng.randbytes(rng.randint(0, 300))
    else:
        data = bytes(rng.choice(b'{}[]":, \\\xc3\xa9\xff\x00') for _ in range(rng.randint(0, 64)))
    length = None
    if rng.random() < 0.1:
        length = rng.choice([0, 1, 125, 126, 65535, 65536, 1 << 20, 1 << 40, rng.randint(0, 500)])
    return raw.frame(
        opcode,
        data,
        fin=rng.random() < 0.85,
        rsv=0 if rng.random() < 0.9 else rng.randint(1, 7),
        masked=rng.random() < 0.95,
        length=length,
    )


def random_cases(rng: random.Random) -> list[Case]:
    cases = []
    for n in range(RANDOM_CONNECTIONS * 2):
        frames = [random_frame(rng) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.2:  # bytes that are not even frames
            frames.append(rng.randbytes(rng.randint(1, 200)))
        cases.append(Case(f"random #{n}", n % 2 == 1, sends(*frames, half_close=True), SANE_CODES))
    return cases


async def run_case(server: BatonProcess, case: Case, token: str) -> tuple[Case, raw.Ending]:
    socket = await raw.RawSocket.open(server.port or 0)
    try:
        if case.authenticated:
            await socket.authenticate(token)
        await case.send(socket)
        return case, await socket.ending(ENDED_WITHIN_S)
    finally:
        await socket.close()


async def test_garbage_frames_close_only_their_own_socket_and_never_hurt_the_server(
    baton: BatonProcesses, db: asyncpg.Connection, redis_url: str
) -> None:
    server = baton.serve()
    async with tenant_on(server, db) as tenant:
        people = [await tenant.user("engineer") for _ in range(USERS)]
    tokens = [mint_user_token(TEST_JWT_SECRET, person.id, ttl_s=TOKEN_TTL_S) for person in people]
    cases = structured_cases() + random_cases(random.Random(SEED))

    async with inbox(server, tokens[0]) as bystander:
        results = await asyncio.gather(
            *(run_case(server, case, tokens[n % USERS]) for n, case in enumerate(cases))
        )
        client = redis.Redis.from_url(redis_url)
        try:
            event_id = publish_sync(client, str(tenant.account_id), event(1))
        finally:
            client.close()
        assert (await next_json(bystander))["id"] == event_id

    for case, ending in results:
        print(f"{case.name}: {ending.code} {ending.reason!r}")
    assert server.process.poll() is None
    log = server.log()
    assert "Traceback" not in log, log[-4000:]
    assert not re.search(r"\bERROR\b|\bCRITICAL\b", log), log[-4000:]
    unexpected = [
        (case.name, ending.code, ending.reason)
        for case, ending in results
        if ending.timed_out or ending.code not in case.expected
    ]
    assert unexpected == []
