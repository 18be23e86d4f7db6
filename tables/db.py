"""Connections, transactions and JSON for every Baton process: the one data-access helper.

Web and workers alike take Postgres through here, on the one Piccolo pool a process opens
(the web in its lifespan, a worker on Dramatiq's asyncio loop: actors.broker.PiccoloPool).
Queries live beside their tables (``tables/queries/``); this module only hands out
connections, and does it fairly (``_fair_turn``).

Why raw asyncpg connections at all, on a Piccolo pool: the click path (create, claim,
release, queue) is written as SQL for its cost — Piccolo's query builder adds ~0.2-0.3 ms
of CPU per query here (``Table.raw`` ~0.04 ms; bench/piccolo_cost.py), and a create runs
six to eight statements — and several of its statements are CTEs chaining a conditional
``UPDATE … RETURNING`` into inserts. Everything else uses the builder, through ``run``.
JSONB arrives as ``str`` on these connections (no codec on Piccolo's pool): decode it
with ``load_json``; send JSON as text with ``dump_json`` and a ``::jsonb`` cast.
"""

from __future__ import annotations

import asyncio
import contextvars
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
# Dramatiq starts its worker threads before the hook that opens the pool has run, so a
# fresh worker's first messages may arrive a moment early: they wait this long for it.
POOL_WAIT_S = 30.0
POOL_POLL_S = 0.05


@functools.cache
def _configured_engine() -> Any:
    """piccolo_conf's engine, found once: ``engine_finder`` imports and searches the
    configuration module each time it is called (~20 µs)."""
    return engine_finder()


def pool_running() -> bool:
    engine: Any = _configured_engine()
    return engine is not None and engine.pool is not None


async def _engine() -> Any:
    """The engine, once its pool is open (waiting up to ``POOL_WAIT_S`` for it)."""
    if pool_running():
        return _configured_engine()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POOL_WAIT_S
    while not pool_running():
        if loop.time() > deadline:
            raise RuntimeError(f"the Piccolo pool is not running in this process after {POOL_WAIT_S:.0f} s")
        await asyncio.sleep(POOL_POLL_S)
    return _configured_engine()


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


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """One transaction on one pooled connection; committed on exit, rolled back on error.

    Nested use is refused: Piccolo's nested ``transaction()`` is not a savepoint, so an
    inner one would silently commit with the outer.
    """
    engine = await _engine()
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


# Set while this task holds a connection of ``connection()``: a builder query (``run``)
# then would wait for a second turn while holding the first, and under load the pool
# can run out of turns that way.
_holding_connection: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "baton_db_holding_connection", default=False
)


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in autocommit: each statement is its own transaction."""
    pool = (await _engine()).pool
    async with _fair_turn(pool), pool.acquire() as conn:
        holding = _holding_connection.set(True)
        try:
            yield conn
        finally:
            _holding_connection.reset(holding)


async def run(query: Any) -> Any:
    """A Piccolo query-builder statement, taking its connection the way ``connection()``
    does: inside ``transaction()`` it runs on that transaction's connection (Piccolo
    binds it through the engine's ``current_transaction`` context variable, which
    ``transaction()`` sets), else on a pooled one after a fair turn. Piccolo alone would
    take the pool's connection directly, past the line of waiters ``_fair_turn`` keeps.
    Not inside ``connection()``: that already holds a turn, and two per task can
    deadlock a full pool (refused). Costs ~0.2-0.3 ms of CPU more than the same
    statement through ``fetch`` (bench/piccolo_cost.py): nothing beside an SMTP or AI
    call, too much for the click path."""
    engine = await _engine()
    if engine.current_transaction.get() is not None:
        return await query.run()
    if _holding_connection.get():
        raise RuntimeError("a builder query while holding db.connection(): leave it first")
    async with _fair_turn(engine.pool):
        return await query.run()


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    async with connection() as conn:
        return list(await conn.fetch(sql, *args))


async def fetchrow(sql: str, *args: Any) -> asyncpg.Record | None:
    async with connection() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
        return row


async def fetchval(sql: str, *args: Any) -> Any:
    async with connection() as conn:
        return await conn.fetchval(sql, *args)


async def execute(sql: str, *args: Any) -> str:
    async with connection() as conn:
        status: str = await conn.execute(sql, *args)
        return status


_json_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def load_json(value: str | bytes | None) -> Any:
    return None if value is None else msgspec.json.decode(value)


def iso(moment: datetime) -> str:
    """A timestamp as the API writes it everywhere (msgspec's RFC 3339, ``Z`` for UTC)."""
    return _json_encoder.encode(moment).decode()[1:-1]
