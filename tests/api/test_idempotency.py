"""``Idempotency-Key`` on create: the same key and body answer the first response and
create nothing; the same key with another request is refused."""

from __future__ import annotations

import asyncpg
import redis.asyncio

from tests.api.conftest import TenantFactory, assert_problem, inbox_events


async def test_repeating_a_create_with_its_key_returns_the_first_answer_and_creates_nothing(
    tenant: TenantFactory, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    first = await acme.hand_off(
        tech, session_id, "escalate", engineer_notes="Help", idempotency_key="click-1"
    )

    again = await acme.hand_off(
        tech, session_id, "escalate", engineer_notes="Help", idempotency_key="click-1"
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 6  # 5 jobs + the announcement
    assert (await acme.get_session(session_id))["handoff_count"] == 1
    assert len(await inbox_events(inbox_redis, acme.account_id)) == 1


async def test_a_replay_answers_the_first_response_even_after_the_handoff_moved_on(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)
    first = (await acme.hand_off(tech, session_id, "park", idempotency_key="k")).json()
    await acme.claim(senior, first["id"])

    again = await acme.hand_off(tech, session_id, "park", idempotency_key="k")

    assert again.status_code == 201
    assert again.json() == first


async def test_defaults_spelled_out_are_the_same_request(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    first = (await acme.hand_off(tech, session_id, "park", idempotency_key="k")).json()

    again = await acme.hand_off(tech, session_id, "park", priority="normal", idempotency_key="k")

    assert again.status_code == 201 and again.json()["id"] == first["id"]


async def test_a_key_reused_with_another_body_is_refused(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    await acme.hand_off(tech, session_id, "escalate", engineer_notes="one", idempotency_key="k")

    response = await acme.hand_off(tech, session_id, "escalate", engineer_notes="two", idempotency_key="k")

    assert "Idempotency-Key" in assert_problem(response, 422)["detail"]
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 1


async def test_a_key_reused_for_another_session_is_refused(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    await acme.hand_off(tech, await acme.session(tech), "park", idempotency_key="k")

    assert_problem(await acme.hand_off(tech, await acme.session(tech), "park", idempotency_key="k"), 422)

    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 1


async def test_a_key_reused_by_another_user_is_refused(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech, other = await acme.user(), await acme.user()
    session_id = await acme.session(tech)
    await acme.hand_off(tech, session_id, "park", idempotency_key="k")

    assert_problem(await acme.hand_off(other, session_id, "park", idempotency_key="k"), 422)


async def test_two_accounts_may_use_the_same_key(tenant: TenantFactory) -> None:
    acme, other = await tenant(), await tenant("Other MSP")
    acme_tech, other_tech = await acme.user(), await other.user()

    first = await acme.hand_off(acme_tech, await acme.session(acme_tech), "park", idempotency_key="k")
    second = await other.hand_off(other_tech, await other.session(other_tech), "park", idempotency_key="k")

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_a_failed_create_does_not_burn_its_key(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    closed = await acme.session(tech, status="closed")
    assert_problem(await acme.hand_off(tech, closed, "park", idempotency_key="k"), 409)
    await acme.put(f"/sessions/{closed}", {"user_id": str(tech.id), "status": "active"})

    retried = await acme.hand_off(tech, closed, "park", idempotency_key="k")

    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
