"""What the web process holds open while it serves: the Postgres pool and Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from litestar import Litestar
from piccolo.engine import engine_finder

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
    settings = app.state.settings
    client = aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        socket_keepalive=True,
        health_check_interval=10,
        retry_on_timeout=True,
    )
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
