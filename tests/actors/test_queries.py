"""The workers' queries (tables/queries/) keep the house rules of tables/db.py: a builder
query joins the transaction it runs in, waits its fair turn for a connection outside one,
and writes timestamps from the database's clock."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.api.conftest import Tenant

from .conftest import escalation_session


async def _handoff(acme: Tenant, intent: str = "escalate") -> uuid.UUID:
    tech = await acme.user(name="Tess Tech")
    created = await acme.handed_off(tech, await escalation_session(acme, tech), intent)
    return uuid.UUID(created["id"])


async def test_a_builder_query_inside_a_transaction_sees_that_transactions_own_writes(acme: Tenant) -> None:
    from tables import db
    from tables.queries.assessment import assessment_status

    handoff_id = await _handoff(acme)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE session_handoffs SET assessment_status = 'failed' WHERE id = $1", handoff_id
        )
        # Uncommitted: only the transaction's own connection can see it.
        seen_inside = await assessment_status(handoff_id=handoff_id)
        seen_outside = await asyncpg_status(acme, handoff_id)
    assert (seen_inside, seen_outside) == ("failed", "pending")


async def asyncpg_status(acme: Tenant, handoff_id: uuid.UUID) -> str:
    """What another connection sees (the default READ COMMITTED)."""
    from tables import db

    status: str = await db.fetchval(
        "SELECT assessment_status FROM session_handoffs WHERE id = $1", handoff_id
    )
    return status


async def test_a_connection_freed_goes_to_who_waited_first_not_to_a_builder_query_behind_them(
    acme: Tenant,
) -> None:
    from tables import db
    from tables.queries.assessment import assessment_status

    handoff_id = await _handoff(acme)
    pool_size = (await db._engine()).pool.get_max_size()
    releases = [asyncio.Event() for _ in range(pool_size + 1)]
    holding = [asyncio.Event() for _ in range(pool_size + 1)]

    async def hold(index: int) -> None:
        async with db.connection():
            holding[index].set()
            await releases[index].wait()

    holders = [asyncio.create_task(hold(index)) for index in range(pool_size)]
    await asyncio.gather(*(holding[index].wait() for index in range(pool_size)))  # the pool is full
    first = asyncio.create_task(hold(pool_size))
    await asyncio.sleep(0)  # one turn of the loop: it now waits for a connection
    second = asyncio.create_task(assessment_status(handoff_id=handoff_id))
    await asyncio.sleep(0)
    releases[0].set()  # one connection comes free
    try:
        # Had the builder query gone to the pool directly, it would have taken that one.
        await asyncio.wait_for(holding[pool_size].wait(), timeout=10)
        assert not second.done()
    finally:
        for release in releases:
            release.set()
        await asyncio.gather(*holders, first, second, return_exceptions=True)
    assert second.result() == "pending"


async def test_the_saved_briefing_moves_the_handoffs_updated_at_on_the_database_clock(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from actors.briefing import run

    handoff_id = await _handoff(acme, "park")
    before = await db.fetchval("SELECT updated_at FROM session_handoffs WHERE id = $1", handoff_id)

    await run(handoff_id)  # offline: no AI in the test session

    row = await db.fetchrow(
        "SELECT briefing_status, updated_at, updated_at <= now() AS not_ahead "
        "FROM session_handoffs WHERE id = $1",
        handoff_id,
    )
    assert row["briefing_status"] == "ready"
    assert row["updated_at"] > before and row["not_ahead"]


async def test_a_sweep_writes_one_chat_job_for_a_handoffs_stuck_slack_and_teams_rows(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from actors.deliveries import ensure
    from actors.delivery_sweep import sweep_stuck_deliveries

    handoff_id = await _handoff(acme)
    await ensure(acme.account_id, handoff_id, "slack", [str(uuid.uuid4())])
    await ensure(acme.account_id, handoff_id, "teams", [str(uuid.uuid4())])
    await ensure(acme.account_id, handoff_id, "email", ["a@example.com", "b@example.com"])
    # As if their messages had been lost an hour ago.
    await db.execute(
        "UPDATE deliveries SET updated_at = now() - interval '1 hour' WHERE handoff_id = $1", handoff_id
    )
    before = await db.fetchval("SELECT count(*) FROM outbox")

    assert await sweep_stuck_deliveries(stuck_after_s=600) == 2

    jobs = await db.fetch(
        "SELECT actor_name, payload->>'handoff_id' AS handoff_id, account_id FROM outbox "
        "ORDER BY created_at DESC, actor_name LIMIT 2"
    )
    assert sorted(job["actor_name"] for job in jobs) == ["notify_chat", "send_escalation_emails"]
    assert {(job["handoff_id"], job["account_id"]) for job in jobs} == {(str(handoff_id), acme.account_id)}
    assert await db.fetchval("SELECT count(*) FROM outbox") == before + 2


async def test_a_fan_out_to_four_thousand_addresses_writes_a_row_for_each(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from actors.deliveries import ensure

    handoff_id = await _handoff(acme)
    addresses = [f"senior-{n}@example.com" for n in range(4_000)]  # 36,000 parameters in one insert

    rows = await ensure(acme.account_id, handoff_id, "email", addresses)

    assert len(rows) == 4_000
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE handoff_id = $1", handoff_id) == 4_000
