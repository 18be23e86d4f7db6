"""The two endpoints the inbox page adds: who a token belongs to, and a retry for an
assessment that failed."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import msgspec
import redis.asyncio

from tests.api.conftest import API, Tenant, TenantFactory, assert_problem, client, tenant

__all__ = ["client", "tenant"]  # the fixtures of tests.api, shared


async def test_me_names_the_user_a_token_belongs_to(client: httpx.AsyncClient, tenant: TenantFactory) -> None:
    acme = await tenant()
    dana = await acme.user("owner", name="Dana Okafor")

    response = await client.get(f"{API}/me", headers=dana.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(dana.id),
        "account_id": str(acme.account_id),
        "name": "Dana Okafor",
        "role": "owner",
    }
    assert_problem(await client.get(f"{API}/me"), 401)
    assert_problem(await client.get(f"{API}/me", headers=acme.host_app), 403)


async def _failed_escalation(
    tenant: TenantFactory, db: asyncpg.Connection
) -> tuple[Tenant, dict[str, str], str]:
    acme = await tenant()
    tess = await acme.user("technician")
    sam = await acme.user("admin")
    created = await acme.handed_off(tess, await acme.session(tess), "escalate")
    await db.execute(
        "UPDATE session_handoffs SET assessment_status = 'failed' WHERE id = $1", uuid.UUID(created["id"])
    )
    return acme, sam.headers, created["id"]


async def test_a_failed_assessment_is_sent_to_the_workers_again(
    client: httpx.AsyncClient, tenant: TenantFactory, db: asyncpg.Connection, redis_url: str
) -> None:
    from actors.events import published_mark_key  # imported once the settings are known

    acme, headers, handoff_id = await _failed_escalation(tenant, db)
    store = redis.asyncio.Redis.from_url(redis_url)
    mark = published_mark_key(acme.account_id, handoff_id, "handoff_assessment_ready")
    jobs = (
        "SELECT payload FROM outbox WHERE actor_name = 'assess_handoff' AND account_id = $1 "
        "ORDER BY created_at"
    )
    try:
        await store.set(mark, "1")  # the failure was announced once
        written_before = len(await db.fetch(jobs, acme.account_id))  # the escalation's own job

        response = await client.post(f"{API}/handoffs/{handoff_id}/assessment", headers=headers)

        assert response.status_code == 202, response.text
        assert response.json()["assessment"]["status"] == "pending"
        # The job is an outbox row, handed to the workers by its commit (no broker call).
        written = await db.fetch(jobs, acme.account_id)
        assert len(written) == written_before + 1
        assert msgspec.json.decode(written[-1]["payload"])["handoff_id"] == handoff_id
        assert not await store.exists(mark), "the retry's result must be announced too"

        # Asking again while it runs changes nothing.
        again = await client.post(f"{API}/handoffs/{handoff_id}/assessment", headers=headers)
        assert again.status_code == 202
        assert len(await db.fetch(jobs, acme.account_id)) == len(written)
    finally:
        await store.aclose()


async def test_only_a_failed_assessment_can_be_retried(
    client: httpx.AsyncClient, tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, headers, handoff_id = await _failed_escalation(tenant, db)
    await db.execute(
        "UPDATE session_handoffs SET assessment_status = 'ready' WHERE id = $1", uuid.UUID(handoff_id)
    )
    body = assert_problem(await client.post(f"{API}/handoffs/{handoff_id}/assessment", headers=headers), 409)
    assert body["detail"] == "Only a failed assessment can be retried; this one is ready."

    assert_problem(await client.post(f"{API}/handoffs/{uuid.uuid4()}/assessment", headers=headers), 404)
    globex = await tenant("Globex")
    outsider = await globex.user("owner")
    assert_problem(
        await client.post(f"{API}/handoffs/{handoff_id}/assessment", headers=outsider.headers), 404
    )
    assert_problem(await client.post(f"{API}/handoffs/{handoff_id}/assessment", headers=acme.host_app), 403)
