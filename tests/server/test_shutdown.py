"""The web process's shutdown: past its deadline every task still running is logged with
where it waits, and the Postgres pool closes within its bound even with a connection held."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from server.shutdown import with_shutdown_deadline
from tests.conftest import SessionServices

DEADLINE_S = 0.3
WAIT_S = 10.0


class RecordSeen(logging.Handler):
    """Sets ``seen`` (from any thread) when a record of ``level`` or above is emitted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, level: int) -> None:
        super().__init__(level)
        self.loop = loop
        self.seen = asyncio.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.loop.call_soon_threadsafe(self.seen.set)


@pytest.fixture
async def errors() -> AsyncIterator[RecordSeen]:
    handler = RecordSeen(asyncio.get_running_loop(), logging.ERROR)
    logger = logging.getLogger("baton.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_a_shutdown_past_its_deadline_logs_each_task_still_running_and_the_line_it_waits_on(
    errors: RecordSeen,
) -> None:
    released = asyncio.Event()

    @asynccontextmanager
    async def step_that_waits(app: Litestar) -> AsyncIterator[None]:
        yield
        await released.wait()

    lifespan = with_shutdown_deadline(step_that_waits, deadline_s=DEADLINE_S)(Litestar())
    await lifespan.__aenter__()
    shutdown = asyncio.create_task(lifespan.__aexit__(None, None, None), name="the-shutdown")
    await asyncio.wait_for(errors.seen.wait(), WAIT_S)
    released.set()
    await asyncio.wait_for(shutdown, WAIT_S)

    [dump] = errors.messages
    assert dump.startswith(f"shutdown still running after {DEADLINE_S:.0f} s;"), dump
    assert "task 'the-shutdown' (pending):" in dump
    assert "in step_that_waits" in dump and "await released.wait()" in dump, dump


async def test_a_shutdown_that_ends_in_time_logs_nothing(errors: RecordSeen) -> None:
    @asynccontextmanager
    async def quick_step(app: Litestar) -> AsyncIterator[None]:
        yield

    async with with_shutdown_deadline(quick_step, deadline_s=DEADLINE_S)(Litestar()):
        pass
    # Disarmed, the watchdog's thread ends at once; one still waiting would log later.
    for watchdog in [t for t in threading.enumerate() if t.name == "shutdown-watchdog"]:
        watchdog.join(WAIT_S)
        assert not watchdog.is_alive()
    assert errors.messages == []


async def test_a_shutdown_blocked_in_a_synchronous_call_logs_the_loop_threads_stack(
    errors: RecordSeen,
) -> None:
    @asynccontextmanager
    async def step_that_blocks(app: Litestar) -> AsyncIterator[None]:
        yield
        time.sleep(DEADLINE_S + 1.5)  # the loop cannot run anything, a timer included

    async with with_shutdown_deadline(step_that_blocks, deadline_s=DEADLINE_S)(Litestar()):
        pass
    await asyncio.wait_for(errors.seen.wait(), WAIT_S)
    [dump] = errors.messages
    assert "the event loop is blocked" in dump and "in step_that_blocks" in dump, dump


async def test_the_pool_closes_within_its_bound_while_a_connection_is_still_held(
    services: SessionServices,
) -> None:
    from piccolo.engine import engine_finder

    from server.lifespan import POOL_MAX_SIZE, close_pool
    from tables.pool import POOL_OPTIONS

    engine: Any = engine_finder()
    await engine.start_connection_pool(max_size=POOL_MAX_SIZE, **POOL_OPTIONS)
    held = await engine.pool.acquire()  # a request the shutdown cut off, say
    assert await held.fetchval("SELECT 1") == 1
    started = time.monotonic()
    await asyncio.wait_for(close_pool(engine, timeout_s=0.5), WAIT_S)
    took_s = time.monotonic() - started

    assert took_s < 2.0, f"the pool took {took_s:.1f} s to close"
    assert engine.pool is None
    with pytest.raises(asyncpg.InterfaceError):  # its connection is gone
        await held.fetchval("SELECT 1")
