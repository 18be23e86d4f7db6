"""Pick-up links: ``{BATON_PUBLIC_URL}/pickup/{token}``, a signed capability to claim one
hand-off as one recipient, for 24 hours (SPEC second edition, "Pick up from the e-mail").

The workers make them (every escalation and tier e-mail carries one per recipient:
``actors/mail_batches.py``, ``actors/mail_message.py``); the web reads them
(``server/handoffs/pickup.py``, ``server/pickup_page/``). A module of its own below both,
as ``settings.py`` is: ``server`` never imports ``actors`` at import time (the broker
binds to Redis there). A token is 53 bytes, base64url without padding
(71 characters, the same for every link, which ``actors/mail_message.py`` relies on)::

    version (1) | hand-off id (16) | recipient user id (16) | expires at (4) | tag (16)

``expires at`` is whole seconds since the epoch, unsigned big-endian; ``tag`` is
HMAC-SHA256 of the first 37 bytes under the link key, cut to 128 bits. The link key is
HMAC-SHA256(``BATON_JWT_SECRET``, ``"baton pickup link v1"``): domain-separated from the
JWTs, which HS256 signs with the secret itself, so no JWT signature is ever a valid tag
(nor the reverse) and the secret is never in a link. A changed byte anywhere (another
hand-off id, another user, a later expiry) fails the tag; the tag is checked before the
expiry, so only a link Baton made can be told "expired".
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from settings import Settings

log = logging.getLogger("baton.pickup")

VERSION = 1
LINK_TTL_S = 24 * 3600
PATH_PREFIX = "/pickup/"
KEY_LABEL = b"baton pickup link v1"
TAG_BYTES = 16
_BODY = struct.Struct(">B16s16sI")  # version, hand-off id, user id, expires at
TOKEN_BYTES = _BODY.size + TAG_BYTES
TOKEN_CHARS = (TOKEN_BYTES * 4 + 2) // 3  # base64 without padding: 71
TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

# The time links are made and judged by: a test moves it instead of waiting a day.
clock: Callable[[], float] = time.time


class BadLink(ValueError):
    """Not a link Baton made: malformed, tampered with, or signed under another secret."""


class ExpiredLink(ValueError):
    """A link Baton made, past its 24 hours."""


@dataclass(frozen=True, slots=True)
class PickupLink:
    handoff_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: int


@functools.lru_cache(maxsize=4)
def link_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest()


def _tag(secret: str, body: bytes) -> bytes:
    return hmac.new(link_key(secret), body, hashlib.sha256).digest()[:TAG_BYTES]


def make_token(secret: str, *, handoff_id: uuid.UUID, user_id: uuid.UUID, expires_at: int) -> str:
    body = _BODY.pack(VERSION, handoff_id.bytes, user_id.bytes, expires_at)
    return base64.urlsafe_b64encode(body + _tag(secret, body)).rstrip(b"=").decode("ascii")


def new_token(secret: str, *, handoff_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """A link made now: it expires ``LINK_TTL_S`` from now."""
    return make_token(secret, handoff_id=handoff_id, user_id=user_id, expires_at=int(clock()) + LINK_TTL_S)


def read_token(secret: str, token: str) -> PickupLink:
    """The link ``token`` stands for; ``BadLink`` or ``ExpiredLink`` otherwise."""
    if len(token) != TOKEN_CHARS or not TOKEN_ALPHABET.issuperset(token):
        raise BadLink("not a pick-up link")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadLink("not a pick-up link") from None
    body, tag = raw[: _BODY.size], raw[_BODY.size :]
    # One spelling per link: base64 ignores the last character's two spare bits.
    canonical = len(raw) == TOKEN_BYTES and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == token
    if not canonical or not hmac.compare_digest(tag, _tag(secret, body)):
        raise BadLink("not a pick-up link")
    version, handoff_bytes, user_bytes, expires_at = _BODY.unpack(body)
    if version != VERSION:
        raise BadLink("not a pick-up link")
    link = PickupLink(uuid.UUID(bytes=handoff_bytes), uuid.UUID(bytes=user_bytes), expires_at)
    if expires_at <= clock():
        raise ExpiredLink("this pick-up link has expired")
    return link


# ------------------------------------------------------------------ on or off

_said_off = False


def links_on(settings: Settings) -> bool:
    """Pick-up links need ``BATON_PUBLIC_URL`` (and a secret to sign them); without it
    messages carry none, and the process says so once."""
    global _said_off
    if settings.public_url and settings.jwt_secret:
        return True
    if not _said_off:
        _said_off = True
        log.info("pick-up links are off: BATON_PUBLIC_URL is not set, so messages carry none")
    return False


def url_prefix(settings: Settings) -> str:
    """``{BATON_PUBLIC_URL}/pickup/``: every link is this and a token."""
    return f"{(settings.public_url or '').rstrip('/')}{PATH_PREFIX}"


@dataclass(frozen=True)
class RecipientLinks:
    """The links of one hand-off's messages: one per recipient address, naming the
    eligible user behind it (``user_ids``; an address nobody eligible has gets none)."""

    secret: str
    prefix: str
    handoff_id: uuid.UUID
    user_ids: Mapping[str, uuid.UUID]

    def url_for(self, address: str) -> str | None:
        user_id = self.user_ids.get(address.lower())
        if user_id is None:
            return None
        return self.prefix + new_token(self.secret, handoff_id=self.handoff_id, user_id=user_id)
