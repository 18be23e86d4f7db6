"""``WS /api/v1/inbox``: the live events of the caller's account.

The conversation (SPEC "Wire shapes"):

1. The server accepts, then checks ``Origin`` (a foreign one: close 4403).
2. The client authenticates with an ``Authorization: Bearer`` header or, from a browser,
   with its first message ``{"type": "auth", "token": …}`` within ``AUTH_TIMEOUT_S``;
   never in the URL. Bad or missing: close 4401.
3. The server says ``{"type": "hello", "account_id", "last_event_id"}``, replays the events
   after ``?since=`` (or sends ``{"type": "resync"}`` when they were trimmed away), then
   streams live events ``{"id", "type", …}``.

Live frames are written straight to the socket's transport when the server offers it
(``server.inbox_wire``), through ASGI otherwise.

The account comes only from the token. Protocol pings are uvicorn's (``ws_ping_interval``):
a client that stops answering is dropped. A client that reads too slowly overflows its
bounded buffer in the hub and is closed with 1013 instead of slowing the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

import log_context
from inbox import Hub, InvalidEventId, SubscriberDropped
from server.auth import UserCaller, caller_from_token
from server.inbox_wire import WRITE_TEXT_NOW
from server.problems import Problem
from server.rate_limits import CLOSE_RATE_LIMITED, inbox_connect_refusal
from settings import Settings

log = logging.getLogger("baton.inbox")

AUTH_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0

CLOSE_BAD_AUTH = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_BAD_REQUEST = 4400
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the client fell too far behind


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class AuthMessage(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    token: str


def _origin_allowed(socket: WebSocket[Any, Any, Any], settings: Settings) -> bool:
    """Non-browser clients send no Origin; browsers must come from us or an allowed one."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True
    if origin in settings.allowed_origins:
        return True
    host = socket.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def _token(socket: WebSocket[Any, Any, Any]) -> str:
    header = socket.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(CLOSE_BAD_AUTH, "Authorization must be 'Bearer <token>'")
        return token.strip()
    try:
        raw = await asyncio.wait_for(socket.receive_data(mode="text"), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise _Refused(CLOSE_BAD_AUTH, 'send {"type": "auth", "token": …} first') from None
    try:
        message = msgspec.json.decode(raw, type=AuthMessage)
    except msgspec.DecodeError:
        raise _Refused(CLOSE_BAD_AUTH, "the first message must be an auth message") from None
    if message.type != "auth":
        raise _Refused(CLOSE_BAD_AUTH, "the first message must be of type auth")
    return message.token


async def _account_of(token: str, settings: Settings) -> tuple[str, str]:
    """(account id, user id) of an eligible user, or _Refused."""
    try:
        caller = await caller_from_token(settings.jwt_secret or "", token)
    except Problem as problem:
        raise _Refused(CLOSE_BAD_AUTH, problem.detail) from None
    if not isinstance(caller, UserCaller):
        raise _Refused(CLOSE_BAD_AUTH, "the inbox is for people: use a user token")
    return str(caller.account_id), str(caller.id)


async def _forward(socket: WebSocket[Any, Any, Any], sub: Any) -> None:
    async for frame in sub:
        await socket.send_data(frame.decode(), mode="text")


async def _drain_client(socket: WebSocket[Any, Any, Any]) -> None:
    """Read (and ignore) what the client sends, so its close is noticed."""
    while True:
        await socket.receive_data(mode="text")


@websocket("/api/v1/inbox")
async def inbox_socket(socket: WebSocket[Any, Any, Any]) -> None:
    settings: Settings = socket.app.state.settings
    hub: Hub = socket.app.state.hub
    await socket.accept()
    sub = None
    try:
        if not _origin_allowed(socket, settings):
            raise _Refused(CLOSE_FORBIDDEN_ORIGIN, "this Origin may not open the inbox")
        account_id, user_id = await _account_of(await _token(socket), settings)
        log_context.bind(account_id=account_id)
        refusal = await inbox_connect_refusal(socket.app.state, user_id)
        if refusal is not None:
            raise _Refused(CLOSE_RATE_LIMITED, refusal)
        try:
            sub = await hub.subscribe(account_id, socket.query_params.get("since"))
        except InvalidEventId as exc:
            raise _Refused(CLOSE_BAD_REQUEST, str(exc)[:120]) from None
        hello = {"type": "hello", "account_id": account_id, "last_event_id": sub.last_event_id}
        await socket.send_data(msgspec.json.encode(hello).decode(), mode="text")
        # After the hello, which must come first: live frames may now skip the ASGI path.
        extensions: dict[Any, Any] = socket.scope.get("extensions") or {}
        write_now = extensions.get(WRITE_TEXT_NOW)
        if callable(write_now):
            sub.attach_writer(write_now)
        log.debug("inbox socket open: user %s, account %s", user_id, account_id)
        await _serve(socket, sub)
    except _Refused as refused:
        await _close(socket, refused.code, refused.reason)
    except WebSocketDisconnect:
        pass
    finally:
        if sub is not None:
            hub.unsubscribe(sub)


async def _serve(socket: WebSocket[Any, Any, Any], sub: Any) -> None:
    forward = asyncio.ensure_future(_forward(socket, sub))
    drain = asyncio.ensure_future(_drain_client(socket))
    try:
        done, _ = await asyncio.wait({forward, drain}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (forward, drain):
            task.cancel()
        for task in (forward, drain):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if forward in done and isinstance(forward.exception(), SubscriberDropped):
        if sub.dropped_slow:
            log.warning("inbox socket of account %s fell behind; closing it with 1013", sub.account_id)
            await _close(socket, CLOSE_TRY_AGAIN_LATER, "too slow: reconnect with since")
        else:
            await _close(socket, 1012, "server restarting: reconnect with since")


async def _close(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    # A client that stopped reading may never take the close frame either: bound it,
    # and the server drops the connection when the handler returns.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(socket.close(code=code, reason=reason[:120]), CLOSE_TIMEOUT_S)
