"""Is this request Slack's? Its v0 signature, its age and whether it was seen before.

Slack signs every interaction request with the Slack app's signing secret (the channel's
write-only ``signing_secret``): ``X-Slack-Signature: v0=`` + hex HMAC-SHA256 of
``v0:{X-Slack-Request-Timestamp}:{raw body}``. Baton accepts a request only when that
matches (compared in constant time), the timestamp is within ``MAX_AGE_S`` of now, and the
signature was not seen before (a replay): else 401 and nothing is done.

Replays are remembered in Redis, ``SEEN_KEY`` set NX with ``SEEN_TTL_S``: longer than any
request can stay acceptable (a timestamp up to ``MAX_AGE_S`` ahead of this clock is still
taken, so a signature can be good for twice the window), so a replay inside the window
always finds its mark, on every replica. Redis unreachable or stalled: 503 (fail closed;
an unverifiable replay must not claim), within the request path's bound
(server/request_redis.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import redis.asyncio

from server.problems import Problem
from server.request_redis import REDIS_FAILURES, redis_deadline

SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
VERSION = "v0"
MAX_AGE_S = 300
SEEN_TTL_S = 2 * MAX_AGE_S + 60
SEEN_KEY = "baton:slack:seen:{signature}"
# "v0=" and 64 hex digits; a Unix time in seconds. Anything longer is not Slack's.
SIGNATURE_MAX_CHARS = 3 + 64
TIMESTAMP_MAX_CHARS = 12

# One detail for every refusal: which check failed (no such channel, no secret, a bad
# signature, a stale timestamp, a replay) is not told to whoever is guessing.
UNVERIFIED = "The request's Slack signature could not be verified."
SEEN_UNREADABLE = "Slack requests are refused while Baton cannot check them for replays; try again shortly."

clock: Callable[[], float] = time.time
"""Seconds since the epoch; tests do not move it (they sign with old timestamps instead)."""


def unverified() -> Problem:
    return Problem(401, UNVERIFIED)


def signature_of(secret: str, timestamp: str, body: bytes) -> str:
    """What Slack sends in ``X-Slack-Signature`` for this timestamp and body."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def fresh_timestamp(timestamp: str | None) -> str:
    """The timestamp header when it is a Unix time within ``MAX_AGE_S`` of now; else 401."""
    if (
        not timestamp
        or len(timestamp) > TIMESTAMP_MAX_CHARS
        or not timestamp.isdigit()
        or not timestamp.isascii()
    ):
        raise unverified()
    if abs(clock() - int(timestamp)) > MAX_AGE_S:
        raise unverified()
    return timestamp


def check_signature(secret: str, timestamp: str, body: bytes, signature: str | None) -> str:
    """The signature when it is Slack's for this body; else 401. Constant time."""
    if not signature or len(signature) > SIGNATURE_MAX_CHARS or not signature.isascii():
        raise unverified()
    expected = signature_of(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise unverified()
    return signature


async def mark_seen(client: redis.asyncio.Redis, signature: str) -> None:
    """Remember a verified signature; 401 when it was seen before, 503 when Redis cannot say."""
    try:
        async with redis_deadline():
            first = await client.set(SEEN_KEY.format(signature=signature), b"1", nx=True, ex=SEEN_TTL_S)
    except REDIS_FAILURES:
        raise Problem(503, SEEN_UNREADABLE, headers={"Retry-After": "5"}) from None
    if not first:
        raise unverified()
