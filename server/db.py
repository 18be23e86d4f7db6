"""asyncpg connections from Piccolo's pool, for the queries the API writes as SQL.

The click path (create, claim, release, queue) is written as SQL for its cost: Piccolo's
query builder adds ~0.23 ms of CPU per query here (``Table.raw`` ~0.04 ms) and several of
these statements are CTEs that chain a conditional ``UPDATE … RETURNING`` into inserts,
which the builder does not compose; the hot paths also gain from asyncpg's
prepared-statement cache. The pool and the
transaction stay Piccolo's, so there is still one pool per process, opened in the app
lifespan. JSONB arrives as ``str`` here (no codec on Piccolo's pool): decode it with
``load_json``; send JSON as text with ``dump_json`` and a ``::jsonb`` cast.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import msgspec
from piccolo.engine import engine_finder

log = logging.getLogger("baton.db")

T = TypeVar("T")

# Postgres aborts one of two transactions that wait on each other's locks; the other
# commits, so running the victim again from the start gives the answer it should have had.
RETRIED_ERRORS: tuple[type[Exception], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
TRANSACTION_ATTEMPTS = 3


@functools.cache
def _configured_engine() -> Any:
    """piccolo_conf's engine, found once: ``engine_finder`` imports and searches the
    configuration module each time it is called, on every request."""
    return engine_finder()


# The pool's connections handed out first come, first served; see ``_fair_turn``.
_turns: tuple[Any, asyncio.Semaphore] | None = None


def _fair_turn(pool: Any) -> asyncio.Semaphore:
    """A first-come-first-served turn for one of ``pool``'s connections.

    asyncpg's pool hands connections out through an ``asyncio.Queue``, which is not fair
    under load: a connection put back wakes the longest waiter, but a request arriving
    before that waiter runs takes it, and the waiter goes to the back of the line. At 50
    concurrent creates on a pool of 20 that starved a few requests for several rounds
    (bench/api.py: p99 430-470 ms against raw asyncpg's ~200 ms). ``asyncio.Semaphore``
    lets no newcomer past a waiter, so taking a turn first means the pool's queue is
    never contended (p99 210-280 ms, throughput unchanged). One semaphore per pool: the
    pool is bound to the loop that opened it, and a process holds one at a time.
    """
    global _turns
    if _turns is None or _turns[0] is not pool:
        _turns = (pool, asyncio.Semaphore(pool.get_max_size()))
    return _turns[1]


def _engine() -> Any:
    engine: Any = _configured_engine()
    if engine is None or engine.pool is None:
        raise RuntimeError("the Piccolo pool is not running: is the app lifespan on?")
    return engine


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """One transaction on one pooled connection; committed on exit, rolled back on error.

    Nested use is refused: Piccolo's nested ``transaction()`` is not a savepoint, so an
    inner one would silently commit with the outer.
    """
    engine = _engine()
    async with _fair_turn(engine.pool), engine.transaction(allow_nested=False) as txn:
        yield txn.connection


async def in_transaction(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``work(conn)`` in one transaction, run again when Postgres chose it as a deadlock
    (or serialization) victim. ``work`` must have no effect outside the database."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            async with transaction() as conn:
                return await work(conn)
        except RETRIED_ERRORS as exc:
            if attempt == TRANSACTION_ATTEMPTS:
                raise
            log.info("transaction aborted by Postgres (%s); running it again", type(exc).__name__)
    raise AssertionError("unreachable")


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in autocommit: each statement is its own transaction."""
    pool = _engine().pool
    async with _fair_turn(pool), pool.acquire() as conn:
        yield conn


_json_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def load_json(value: str | None) -> Any:
    return None if value is None else msgspec.json.decode(value)


def iso(moment: datetime) -> str:
    """A timestamp as the API writes it everywhere (msgspec's RFC 3339, ``Z`` for UTC)."""
    return _json_encoder.encode(moment).decode()[1:-1]
