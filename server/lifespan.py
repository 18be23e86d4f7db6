"""What the web process holds open while it serves: the Postgres pool, Redis, the inbox's
hub and its guard."""

from __future__ import annotations

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


@asynccontextmanager
async def postgres_pool(app: Litestar) -> AsyncIterator[None]:
    """One Piccolo pool per process, on the server's loop. A failed start is raised:
    a replica that cannot reach Postgres must not pretend to serve."""
    engine: Any = engine_finder()
    await engine.start_connection_pool(max_size=POOL_MAX_SIZE, **POOL_OPTIONS)
    try:
        yield
    finally:
        await engine.close_connection_pool()


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
        await hub.stop()


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
