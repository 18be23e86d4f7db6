"""What an inbox client may say after its hello, and what the server does about it.

Every message is a JSON object with a string ``type``. ``MESSAGE_TYPES`` maps each type
this server knows to its shape and its handler; a new kind of message (presence's
``{"type": "viewing", …}``) is one more entry. The rules for the rest:

- a **type this server does not know** is ignored: during a rolling deploy a page served
  by a newer replica may talk to an older one, and closing its socket for that would only
  make it reconnect and say it again;
- a message that is **not a JSON object with a string type**, or a known type in the
  wrong shape, closes the socket 4400 (4401 for an auth message): no client of ours sends
  one, and a bug that fails loudly gets fixed. Sizes and rate are the protocol's
  (``server.inbox_limits``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from server.auth import UserCaller, caller_from_token
from server.inbox_guard import Watch, token_expires_at
from server.inbox_limits import CLOSE_BAD_AUTH, CLOSE_BAD_REQUEST, Closing
from server.problems import Problem


class Refused(Exception):
    """The socket must end with ``closing``."""

    def __init__(self, closing: Closing) -> None:
        super().__init__(closing.reason)
        self.closing = closing


class AuthMessage(msgspec.Struct, forbid_unknown_fields=True):
    """The first message of a browser's socket, and a re-auth later."""

    type: str
    token: str


class _Envelope(msgspec.Struct):
    type: str


@dataclass(frozen=True, slots=True)
class Listener:
    """An authenticated socket, as its message handlers see it."""

    secret: str
    account_id: uuid.UUID
    user_id: uuid.UUID
    watch: Watch


async def identify(secret: str, token: str) -> tuple[UserCaller, float | None]:
    """The eligible user a token stands for and when it expires; Closing(4401) otherwise."""
    try:
        caller = await caller_from_token(secret, token)
    except Problem as problem:
        raise Refused(Closing(CLOSE_BAD_AUTH, problem.detail)) from None
    if not isinstance(caller, UserCaller):
        raise Refused(Closing(CLOSE_BAD_AUTH, "the inbox is for people: use a user token"))
    try:
        return caller, token_expires_at(secret, token)
    except ValueError as exc:
        raise Refused(Closing(CLOSE_BAD_AUTH, str(exc))) from None


async def reauth(listener: Listener, message: AuthMessage) -> None:
    """A fresh token of the same user carries the socket on until the new token's expiry."""
    caller, expires_at = await identify(listener.secret, message.token)
    if caller.id != listener.user_id or caller.account_id != listener.account_id:
        raise Refused(Closing(CLOSE_BAD_AUTH, "a re-auth must be by the same user"))
    listener.watch.expire_at(expires_at)


@dataclass(frozen=True, slots=True)
class MessageType:
    shape: type[msgspec.Struct]
    handle: Callable[[Listener, Any], Awaitable[None]]
    malformed_code: int = CLOSE_BAD_REQUEST


MESSAGE_TYPES: dict[str, MessageType] = {
    "auth": MessageType(AuthMessage, reauth, malformed_code=CLOSE_BAD_AUTH),
}

_envelope = msgspec.json.Decoder(_Envelope)
_decoders = {name: msgspec.json.Decoder(kind.shape) for name, kind in MESSAGE_TYPES.items()}


async def handle(listener: Listener, text: str) -> None:
    """Act on one client message; Refused when the socket must end."""
    try:
        kind = _envelope.decode(text).type
    except msgspec.DecodeError:
        raise Refused(Closing(CLOSE_BAD_REQUEST, "a message is a JSON object with a string type")) from None
    known = MESSAGE_TYPES.get(kind)
    if known is None:
        return
    try:
        message = _decoders[kind].decode(text)
    except msgspec.DecodeError as exc:
        raise Refused(Closing(known.malformed_code, f"malformed {kind} message: {exc}"[:120])) from None
    await known.handle(listener, message)
