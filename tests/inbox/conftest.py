"""Fixtures for the inbox tests.

``redis_server`` / ``redis_url``: a redis-server child process of our own on a free port
of 127.0.0.1, so a test may stop and restart it on the same port without disturbing the
session's shared Redis. Meant to be merged into the top-level conftest later.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from inbox import Hub
from tests.conftest import SessionServices

HUB_CONNECT_TIMEOUT_S = 10.0
CLIENT_RETRIES = 5
"""The tests' own clients retry (``from_url`` does not by default), so that they reconnect
by themselves after the restart tests."""

StartHub = Callable[..., Awaitable[Hub]]


# ----------------------------------------------------------- Redis (to be merged upward)


@pytest.fixture(scope="session")
def redis_server(services: SessionServices) -> Iterator[EmbeddedRedis]:
    """A redis-server we own: ``.stop()`` / ``.start()`` restart it on the same port.
    In the session's folder, so it goes when the session's data does."""
    folder = services.data_dir / "inbox-redis"
    server = EmbeddedRedis(folder, free_port(), durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


# ------------------------------------------------------------------ inbox helpers


@pytest.fixture
def account_id() -> str:
    return str(uuid.uuid4())


@pytest_asyncio.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(
        redis_url, retry=redis.asyncio.retry.Retry(ExponentialBackoff(), CLIENT_RETRIES)
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, retry=redis.retry.Retry(ExponentialBackoff(), CLIENT_RETRIES))
    try:
        yield client
    finally:
        client.close()


@pytest_asyncio.fixture
async def start_hub(redis_url: str) -> AsyncIterator[StartHub]:
    """``hub = await start_hub(**options)``: a Hub on ``redis_url``, connected, stopped after."""
    hubs: list[Hub] = []

    async def start(**options: Any) -> Hub:
        hub = Hub(redis_url, **options)
        hubs.append(hub)
        await hub.start()
        await asyncio.wait_for(hub.connected.wait(), HUB_CONNECT_TIMEOUT_S)
        return hub

    try:
        yield start
    finally:
        for hub in hubs:
            await hub.stop()
