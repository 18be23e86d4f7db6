"""What the web process holds open while it serves: the Postgres pool, Redis, the inbox's
hub and its guard."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from piccolo.engine import engine_finder

from server.request_redis import request_redis_client
from tables.pool import POOL_OPTIONS

log = logging.getLogger("baton.server")

POOL_MAX_SIZE = 20
POOL_CLOSE_TIMEOUT_S = 3.0
"""asyncpg's ``close()`` waits, unbounded, for every connection in use to come back;
after this the rest are terminated (their queries end with the process anyway)."""


@asynccontextmanager
async def postgres_pool(app: Litestar) -> AsyncIterator[None]:
    """One Piccolo pool per process, on the server's loop. A failed start is raised:
    a replica that cannot reach Postgres must not pretend to serve."""
    engine: Any = engine_finder()
    await engine.start_connection_pool(max_size=POOL_MAX_SIZE, **POOL_OPTIONS)
    try:
        yield
    finally:
        await close_pool(engine, POOL_CLOSE_TIMEOUT_S)


async def close_pool(engine: Any, timeout_s: float) -> None:
    """Piccolo's ``close_connection_pool``, bounded: a connection still held after
    ``timeout_s`` (a request cut off by the shutdown) is terminated, not waited for."""
    pool, engine.pool = engine.pool, None
    if pool is None:
        return
    closing = asyncio.ensure_future(pool.close())
    await asyncio.wait({closing}, timeout=timeout_s)
    if not closing.done():
        log.warning("Postgres pool: connections still in use after %.0f s; terminating them", timeout_s)
        closing.cancel()
        pool.terminate()
    elif not closing.cancelled() and closing.exception() is not None:
        log.warning("Postgres pool: close failed; terminating it", exc_info=closing.exception())
        pool.terminate()


@asynccontextmanager
async def redis_client(app: Litestar) -> AsyncIterator[None]:
    """The request path's Redis: every call bounded (server/request_redis.py)."""
    client = request_redis_client(app.state.settings.redis_url)
    app.state.redis = client
    try:
        yield
    finally:
        await client.aclose()


@asynccontextmanager
async def inbox_hub(app: Litestar) -> AsyncIterator[None]:
    """This replica's one subscription to the account channels, shared by its sockets."""
    from inbox import Hub

    settings = app.state.settings
    hub = Hub(settings.redis_url, history_max_events=settings.inbox_history_max_events)
    await hub.start()
    app.state.hub = hub
    try:
        yield
    finally:
        await hub.stop()  # bounded (inbox.hub.STOP_TIMEOUT_S)


@asynccontextmanager
async def inbox_guard(app: Litestar) -> AsyncIterator[None]:
    """Ends inbox sockets whose token expired or whose user was deactivated or deleted."""
    from server.inbox_guard import InboxGuard

    guard = InboxGuard()
    guard.start()
    app.state.inbox_guard = guard
    try:
        yield
    finally:
        await guard.stop()


@asynccontextmanager
async def frozen_startup_heap(app: Litestar) -> AsyncIterator[None]:
    """Last of the lifespan: what startup built (modules, the app and its routes, the
    libraries: most of the heap) moves to the collector's permanent generation.

    A full collection walked all of it, about 45 ms here, with every request in flight
    stalled; at concurrency 50 those stalls made create's p99 (bench/api.py). From now on
    a collection scans only what serving allocated. (No collection first: the little
    garbage of startup stays, once, rather than a full pass on every start, which in the
    test suite's big heap is paid per test.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
