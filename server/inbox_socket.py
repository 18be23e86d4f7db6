"""``WS /api/v1/inbox``: the live events of the caller's account.

The conversation (SPEC "Wire shapes" and "Security rules"):

1. The server accepts, then checks ``Origin`` (a foreign one: close 4403).
2. The client authenticates with an ``Authorization: Bearer`` header or, from a browser,
   with its first message ``{"type": "auth", "token": …}`` (at most 4 KiB) within
   ``AUTH_TIMEOUT_S``; never in the URL. Bad or missing: close 4401.
3. The server says ``{"type": "hello", "account_id", "last_event_id"}``, replays the events
   after ``?since=`` (or sends ``{"type": "resync"}`` when they were trimmed away), then
   streams live events ``{"id", "type", …}``.
4. Meanwhile the client may send messages of at most 16 KiB (``server.inbox_messages``),
   a fresh auth among them, which carries the socket on past its first token's expiry.

The socket ends with 4401 when its token expires and 4403 when its user is deactivated
or deleted (``server.inbox_guard``); with 1009, 1008, 1007, 1003 or 4400 when the client
breaks a rule of ``server.inbox_limits``.

Live frames are written straight to the socket's transport when the server offers it
(``server.inbox_wire``), through ASGI otherwise.

The account comes only from the token. Protocol pings are uvicorn's (``ws_ping_interval``):
a client that stops answering is dropped. A client that reads too slowly overflows its
bounded buffer in the hub and is closed with 1013 instead of slowing the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from uvicorn.protocols.utils import ClientDisconnected

import log_context
from inbox import Hub, InvalidEventId, Subscriber, SubscriberDropped
from server import inbox_messages
from server.inbox_guard import InboxGuard
from server.inbox_limits import (
    CLOSE_BAD_AUTH,
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    MESSAGE_MAX_BYTES,
    PRE_AUTH_MESSAGE_MAX_BYTES,
    Closing,
)
from server.inbox_messages import AuthMessage, Listener, Refused
from server.inbox_wire import RAISE_MESSAGE_LIMIT, WRITE_TEXT_NOW
from server.rate_limits import CLOSE_RATE_LIMITED, inbox_connect_refusal
from settings import Settings

log = logging.getLogger("baton.inbox")

AUTH_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0

CLOSE_FORBIDDEN_ORIGIN = CLOSE_FORBIDDEN
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the client fell too far behind
CLOSE_SERVER_RESTARTING = 1012


def _origin_allowed(socket: WebSocket[Any, Any, Any], settings: Settings) -> bool:
    """Non-browser clients send no Origin; browsers must come from us or an allowed one."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True
    if origin in settings.allowed_origins:
        return True
    host = socket.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def _next_text(socket: WebSocket[Any, Any, Any], max_bytes: int) -> str:
    """The client's next message: text of at most ``max_bytes`` (under ``baton serve`` the
    protocol already refused a bigger one unread; this holds under any server)."""
    event = await socket.receive()
    if event["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(detail="disconnect event", code=event.get("code", 1005))
    text = event.get("text")
    if not isinstance(text, str):
        raise Refused(Closing(CLOSE_UNSUPPORTED_DATA, "the inbox speaks JSON text, not binary"))
    if len(text.encode()) > max_bytes:
        raise Refused(Closing(CLOSE_TOO_BIG, f"a message here is at most {max_bytes} bytes"))
    return text


async def _token(socket: WebSocket[Any, Any, Any]) -> str:
    header = socket.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(Closing(CLOSE_BAD_AUTH, "Authorization must be 'Bearer <token>'"))
        return token.strip()
    try:
        raw = await asyncio.wait_for(_next_text(socket, PRE_AUTH_MESSAGE_MAX_BYTES), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise Refused(Closing(CLOSE_BAD_AUTH, 'send {"type": "auth", "token": …} first')) from None
    try:
        message = msgspec.json.decode(raw, type=AuthMessage)
    except msgspec.DecodeError:
        raise Refused(Closing(CLOSE_BAD_AUTH, "the first message must be an auth message")) from None
    if message.type != "auth":
        raise Refused(Closing(CLOSE_BAD_AUTH, "the first message must be of type auth"))
    return message.token


async def _forward(socket: WebSocket[Any, Any, Any], sub: Subscriber) -> None:
    async for frame in sub:
        await socket.send_data(frame.decode(), mode="text")


async def _listen(socket: WebSocket[Any, Any, Any], listener: Listener) -> None:
    """Act on what the client sends until it leaves (WebSocketDisconnect) or must go (Refused)."""
    while True:
        await inbox_messages.handle(listener, await _next_text(socket, MESSAGE_MAX_BYTES))


@websocket("/api/v1/inbox")
async def inbox_socket(socket: WebSocket[Any, Any, Any]) -> None:
    settings: Settings = socket.app.state.settings
    hub: Hub = socket.app.state.hub
    guard: InboxGuard = socket.app.state.inbox_guard
    secret = settings.jwt_secret or ""
    await socket.accept()
    sub = None
    listener = None
    try:
        if not _origin_allowed(socket, settings):
            raise Refused(Closing(CLOSE_FORBIDDEN_ORIGIN, "this Origin may not open the inbox"))
        caller, expires_at = await inbox_messages.identify(secret, await _token(socket))
        log_context.bind(account_id=str(caller.account_id))
        refusal = await inbox_connect_refusal(socket.app.state, caller.id)
        if refusal is not None:
            raise Refused(Closing(CLOSE_RATE_LIMITED, refusal))
        try:
            sub = await hub.subscribe(caller.account_id, socket.query_params.get("since"))
        except InvalidEventId as exc:
            raise Refused(Closing(CLOSE_BAD_REQUEST, str(exc)[:120])) from None
        # From here on the guard may end the socket; it cuts the frames off first.
        watch = guard.watch(caller.id, caller.account_id, expires_at, functools.partial(hub.unsubscribe, sub))
        listener = Listener(secret, caller.account_id, caller.id, watch)
        extensions: dict[Any, Any] = socket.scope.get("extensions") or {}
        raise_message_limit = extensions.get(RAISE_MESSAGE_LIMIT)
        if callable(raise_message_limit):
            raise_message_limit()  # before the hello, which the client waits for
        hello = {"type": "hello", "account_id": str(caller.account_id), "last_event_id": sub.last_event_id}
        await socket.send_data(msgspec.json.encode(hello).decode(), mode="text")
        # After the hello, which must come first: live frames may now skip the ASGI path.
        write_now = extensions.get(WRITE_TEXT_NOW)
        if callable(write_now):
            sub.attach_writer(write_now)
        log.debug("inbox socket open: user %s, account %s", caller.id, caller.account_id)
        await _serve(socket, sub, listener)
    except Refused as refused:
        await _close(socket, refused.closing)
    except (WebSocketDisconnect, ClientDisconnected):
        pass
    finally:
        if listener is not None:
            listener.watch.forget()
        if sub is not None:
            hub.unsubscribe(sub)


async def _serve(socket: WebSocket[Any, Any, Any], sub: Subscriber, listener: Listener) -> None:
    watch = listener.watch
    forward = asyncio.ensure_future(_forward(socket, sub))
    listen = asyncio.ensure_future(_listen(socket, listener))
    waits: set[asyncio.Future[Any]] = {forward, listen, watch.closing}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (forward, listen):
            task.cancel()
        for task in (forward, listen):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if listen in done and not listen.cancelled() and isinstance(listen.exception(), Refused):
        refused = listen.exception()
        assert isinstance(refused, Refused)
        watch.revoke(refused.closing)  # unsubscribes at once: not one more frame
    if watch.closing.done():
        await _close(socket, watch.closing.result())
    elif forward in done and isinstance(forward.exception(), SubscriberDropped):
        if sub.dropped_slow:
            log.warning("inbox socket of account %s fell behind; closing it with 1013", sub.account_id)
            await _close(socket, Closing(CLOSE_TRY_AGAIN_LATER, "too slow: reconnect with since"))
        else:
            await _close(socket, Closing(CLOSE_SERVER_RESTARTING, "server restarting: reconnect with since"))


async def _close(socket: WebSocket[Any, Any, Any], closing: Closing) -> None:
    # A client that stopped reading may never take the close frame either: bound it,
    # and the server drops the connection when the handler returns.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(socket.close(code=closing.code, reason=closing.reason[:120]), CLOSE_TIMEOUT_S)
