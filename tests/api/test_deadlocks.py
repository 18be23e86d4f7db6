"""A request that Postgres picks as a deadlock victim is run again, not answered with 500.

The deadlock is made on purpose: the test's own transaction takes one of the two rows the
request needs, waits until the request holds the other, then asks for it. The test's
connection waits longer before checking for deadlocks than the server's (10 s against
Postgres' 1 s default), so the request is always the victim.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.api.conftest import TenantFactory

LOCK_WAIT_TIMEOUT_S = 10.0


@pytest.fixture
async def blocker(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    await conn.execute("SET deadlock_timeout = '10s'")
    try:
        yield conn
    finally:
        await conn.close()


async def _until_someone_waits_for_a_lock(conn: asyncpg.Connection) -> None:
    deadline = time.monotonic() + LOCK_WAIT_TIMEOUT_S
    while not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted)"):
        assert time.monotonic() < deadline, "the request never waited for the test's lock"
        await asyncio.sleep(0.01)


async def test_an_escalation_that_loses_a_deadlock_is_run_again(
    tenant: TenantFactory, db: asyncpg.Connection, blocker: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    park_id = uuid.UUID((await acme.handed_off(tech, session_id, "park"))["id"])

    async with blocker.transaction():
        # The escalation locks the session, then wants the park (to supersede it).
        await blocker.execute("SELECT 1 FROM session_handoffs WHERE id = $1 FOR UPDATE", park_id)
        escalation = asyncio.create_task(acme.hand_off(tech, session_id, "escalate"))
        await _until_someone_waits_for_a_lock(db)
        await blocker.execute("SELECT 1 FROM ai_sessions WHERE id = $1 FOR UPDATE", session_id)
        # Postgres aborted the escalation to give us the session; we give both rows back.

    response = await escalation
    assert response.status_code == 201, response.text
    assert await db.fetchval("SELECT state FROM session_handoffs WHERE id = $1", park_id) == "superseded"


async def test_a_claim_that_loses_a_deadlock_is_tried_again(
    tenant: TenantFactory, db: asyncpg.Connection, blocker: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)
    park_id = uuid.UUID((await acme.handed_off(tech, session_id, "park"))["id"])

    async with blocker.transaction():
        # The claim locks the hand-off, then wants the session (to make it active).
        await blocker.execute("SELECT 1 FROM ai_sessions WHERE id = $1 FOR UPDATE", session_id)
        claim = asyncio.create_task(acme.claim(senior, park_id))
        await _until_someone_waits_for_a_lock(db)
        await blocker.execute("SELECT 1 FROM session_handoffs WHERE id = $1 FOR UPDATE", park_id)

    response = await claim
    assert response.status_code == 200, response.text
    assert response.json()["claimed_by"]["id"] == str(senior.id)
    assert (await acme.get_session(session_id))["status"] == "active"
