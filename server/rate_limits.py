"""Per-caller rate limits, counted in Redis so every replica shares them.

Litestar's own limiter counts per process and reads-then-writes, so two replicas (or two
requests at once) each let a caller through. Here one Lua script decides atomically: a
GCRA (generic cell rate algorithm, a token bucket kept as one timestamp) allowing
``per_minute`` calls a minute with bursts of up to ``per_minute``, answering how long to
wait when it refuses. Redis' own clock is used, so replicas with skewed clocks agree.

Redis keys owned here:
    baton:ratelimit:{bucket}:{caller}   the bucket's "theoretical arrival time" (ms),
        expiring once the caller's allowance is whole again.

Limits fail open: with Redis unreachable, or not answering within
``REQUEST_REDIS_TIMEOUT_S`` (server/request_redis.py), a write is let through (and
logged), because refusing or holding every hand-off while Redis restarts or stalls would
be the bigger outage.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from server.problems import Problem
from server.request_redis import REDIS_FAILURES, redis_deadline

log = logging.getLogger("baton.rate_limits")

KEY = "baton:ratelimit:{bucket}:{caller}"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# How often "Redis is down, limits are off" is logged, at most.
FAIL_OPEN_LOG_INTERVAL_S = 30.0

# KEYS[1] the caller's bucket; ARGV[1] emission interval (ms), ARGV[2] burst window (ms).
# Returns {allowed (1/0), wait before retrying in ms}.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - window - now
if wait > 0 then
  return {0, wait}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int  # whole seconds, at least 1 when refused


class RateLimiter:
    """``await limiter.check(bucket, caller, per_minute)`` -> Decision."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._script = client.register_script(GCRA_SCRIPT)
        self._last_fail_open_log = -math.inf
        self.fail_opens = 0

    async def check(self, bucket: str, caller: str, per_minute: int) -> Decision:
        interval_ms = max(1, 60_000 // per_minute)
        window_ms = 60_000  # a caller idle for a minute may spend a minute's allowance at once
        key = KEY.format(bucket=bucket, caller=caller)
        try:
            async with redis_deadline():
                allowed, wait_ms = await self._script(keys=[key], args=[interval_ms, window_ms])
        except REDIS_FAILURES as exc:
            self.fail_opens += 1
            now = time.monotonic()
            if now - self._last_fail_open_log >= FAIL_OPEN_LOG_INTERVAL_S:
                self._last_fail_open_log = now
                log.warning(
                    "rate limits are off while Redis is unreachable or stalled: %s", type(exc).__name__
                )
            return Decision(True, 0)
        if allowed:
            return Decision(True, 0)
        return Decision(False, max(1, math.ceil(float(wait_ms) / 1000)))


def caller_key(user: Any) -> str | None:
    """Whom a limit counts: a user by id, the host app by account; None for nobody."""
    user_id = getattr(user, "id", None)
    if user_id is not None:
        return f"user:{user_id}"
    account_id = getattr(user, "account_id", None)
    return f"host:{account_id}" if account_id is not None else None


def too_many(retry_after_s: int, what: str) -> Problem:
    return Problem(
        429,
        f"Too many {what}; try again in {retry_after_s} s.",
        headers={"Retry-After": str(retry_after_s)},
        retry_after_s=retry_after_s,
    )


async def limit_writes(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """App-level guard: each caller's writes (POST/PUT/PATCH/DELETE) under the limit, or 429."""
    if connection.scope["type"] != "http" or connection.scope.get("method") not in WRITE_METHODS:
        return
    caller = caller_key(connection.scope.get("user"))
    if caller is None:  # not behind auth (nothing of ours writes without it)
        return
    state = connection.app.state
    decision = await state.rate_limiter.check("writes", caller, state.settings.rate_limit_writes_per_minute)
    if not decision.allowed:
        raise too_many(decision.retry_after_s, "writes")


@asynccontextmanager
async def rate_limiter(app: Litestar) -> AsyncIterator[None]:
    """Lifespan, after ``redis_client``: the limiter on the replica's Redis client."""
    app.state.rate_limiter = RateLimiter(app.state.redis)
    yield


CLOSE_RATE_LIMITED = 4429  # the websocket twin of HTTP 429


async def inbox_connect_refusal(state: Any, user_id: object) -> str | None:
    """None when the user may open another inbox socket, else the close reason."""
    decision = await state.rate_limiter.check(
        "inbox", f"user:{user_id}", state.settings.rate_limit_inbox_connects_per_minute
    )
    return None if decision.allowed else f"too many connects; retry in {decision.retry_after_s} s"
