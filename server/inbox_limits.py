"""What an inbox client may send, and the codes a socket is closed with when it breaks a
rule (SPEC, Second edition → Security rules → "Websocket").

Sizes and rate are enforced by the protocol (``server.inbox_wire``) as frames arrive,
before a payload is read; the handler (``server.inbox_socket``) checks the sizes again so
that they hold, after buffering, under any other ASGI server too.
"""

from __future__ import annotations

from dataclasses import dataclass

PRE_AUTH_MESSAGE_MAX_BYTES = 4 * 1024
"""The one message read before auth: ``{"type": "auth", "token": …}`` (a token is ~250 B)."""
MESSAGE_MAX_BYTES = 16 * 1024
"""Any message after auth, all its fragments together."""

CLIENT_FRAMES_PER_S = 20.0
"""Frames of any kind (data, ping, pong) a client may send a second, on average. Ours send
at most a few: presence (≤ 5 a second, SPEC), a re-auth now and then, pongs."""
CLIENT_FRAMES_BURST = 40
"""…and at once, after a quiet spell."""

CLOSE_UNSUPPORTED_DATA = 1003  # RFC 6455: a binary message; the inbox speaks JSON text
CLOSE_INVALID_DATA = 1007  # RFC 6455: a text message that is not UTF-8
CLOSE_TOO_MANY_FRAMES = 1008  # RFC 6455 policy violation: over the frame rate
CLOSE_TOO_BIG = 1009  # RFC 6455: over the size limit; the payload was never read
CLOSE_BAD_REQUEST = 4400  # a malformed message, or a malformed ``since``
CLOSE_BAD_AUTH = 4401  # no, bad or expired token; a re-auth as somebody else
CLOSE_FORBIDDEN = 4403  # a foreign Origin; a user deactivated or deleted


@dataclass(frozen=True, slots=True)
class Closing:
    """How the server ends a socket: its close code and reason."""

    code: int
    reason: str


class FrameRate:
    """A token bucket: up to ``burst`` frames at once, ``per_s`` a second on average."""

    __slots__ = ("_allowance", "_burst", "_last_s", "_per_s")

    def __init__(
        self, now_s: float, per_s: float = CLIENT_FRAMES_PER_S, burst: int = CLIENT_FRAMES_BURST
    ) -> None:
        self._per_s = per_s
        self._burst = float(burst)
        self._allowance = float(burst)
        self._last_s = now_s

    def allow(self, now_s: float) -> bool:
        """Count one frame at ``now_s``; False when it is over the rate."""
        self._allowance = min(self._burst, self._allowance + (now_s - self._last_s) * self._per_s)
        self._last_s = now_s
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True
