"""asyncpg connections from the process's Piccolo pool, for the actors' SQL.

The actors' statements are still SQL written on connections of the one Piccolo pool
(Piccolo 1.38's builder can express most of them, ``lock_rows`` / ``SKIP LOCKED``,
``UPDATE … RETURNING`` and ``ON CONFLICT`` included; moving them is the house issue's
work): the worker starts it on its asyncio loop (``actors.broker.PiccoloPool``), the web
process in its lifespan. JSONB arrives as
``str``: decode it with ``load_json``; send JSON as text with ``dump_json`` and a
``::jsonb`` cast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from piccolo.engine import engine_finder

POOL_WAIT_S = 30.0
POOL_POLL_S = 0.05


async def _engine() -> Any:
    """The engine, once its pool is open.

    Dramatiq starts its worker threads before the ``after_worker_boot`` hook that opens
    the pool (actors.broker.PiccoloPool) has run, so the first messages of a fresh
    worker may arrive a moment early: they wait for the pool rather than fail.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POOL_WAIT_S
    while True:
        engine: Any = engine_finder()
        if engine is not None and engine.pool is not None:
            return engine
        if loop.time() > deadline:
            raise RuntimeError(f"the Piccolo pool is not running in this process after {POOL_WAIT_S:.0f} s")
        await asyncio.sleep(POOL_POLL_S)


def pool_running() -> bool:
    engine: Any = engine_finder()
    return engine is not None and engine.pool is not None


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """One transaction on one pooled connection; committed on exit, rolled back on error."""
    engine = await _engine()
    async with engine.transaction(allow_nested=False) as txn:
        yield txn.connection


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in autocommit: each statement is its own transaction."""
    engine = await _engine()
    async with engine.pool.acquire() as conn:
        yield conn


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    async with connection() as conn:
        return list(await conn.fetch(sql, *args))


async def fetchrow(sql: str, *args: Any) -> asyncpg.Record | None:
    async with connection() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
        return row


async def execute(sql: str, *args: Any) -> str:
    async with connection() as conn:
        status: str = await conn.execute(sql, *args)
        return status


_json_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def load_json(value: str | bytes | None) -> Any:
    return None if value is None else msgspec.json.decode(value)
