"""Races against two real ``baton serve`` processes on one Postgres: claims, and creates
that repeat one ``Idempotency-Key``. aiohttp fires the requests (light on CPU, so they
really do arrive together); the database is asked afterwards whether it agrees."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import httpx
import pytest
import redis.asyncio

from tests.api.conftest import API, Person, Tenant, inbox_events, new_tenant
from tests.conftest import BatonProcesses

CLAIMERS = 50
ROUNDS = 20
CONCURRENT_CREATES = 10


@dataclass
class TwoReplicas:
    base_urls: list[str]
    tenant: Tenant
    http: aiohttp.ClientSession

    def url(self, i: int, path: str) -> str:
        return f"{self.base_urls[i % len(self.base_urls)]}{API}{path}"

    async def post(self, i: int, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        async with self.http.post(self.url(i, path), headers=headers, json=body) as response:
            return response.status, await response.json(content_type=None)


@pytest.fixture
async def replicas(baton: BatonProcesses, db: asyncpg.Connection) -> AsyncIterator[TwoReplicas]:
    servers = [baton.serve(), baton.serve()]
    async with (
        httpx.AsyncClient(base_url=servers[0].base_url, timeout=30) as setup,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        yield TwoReplicas([server.base_url for server in servers], await new_tenant(db, setup), http)


async def test_of_fifty_concurrent_claimers_on_two_replicas_exactly_one_wins_every_round(
    replicas: TwoReplicas, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = replicas.tenant
    creator = await acme.user()
    claimers: list[Person] = [await acme.user("engineer", f"Claimer {i:02d}") for i in range(CLAIMERS)]
    by_id = {str(person.id): person for person in claimers}

    for _ in range(ROUNDS):
        session_id = await acme.session(creator)
        handoff_id = (await acme.handed_off(creator, session_id, "escalate"))["id"]

        answers = await asyncio.gather(
            *(
                replicas.post(i, f"/handoffs/{handoff_id}/claim", person.headers)
                for i, person in enumerate(claimers)
            )
        )

        winners = [body for status, body in answers if status == 200]
        assert len(winners) == 1, [status for status, _ in answers]
        winner = by_id[winners[0]["claimed_by"]["id"]]
        losers = [body for status, body in answers if status != 200]
        assert {status for status, _ in answers} == {200, 409}
        for body in losers:
            assert body["claimed_by_id"] == str(winner.id)
            assert body["claimed_by_name"] == winner.name
            assert body["claimed_at"] == winners[0]["claimed_at"]
            assert body["detail"] == f"Already claimed by {winner.name}"
        row = await db.fetchrow(
            "SELECT h.state, h.claimed_by, s.status, s.escalated_to_id FROM session_handoffs h "
            "JOIN ai_sessions s ON s.id = h.session_id WHERE h.id = $1",
            uuid.UUID(handoff_id),
        )
        assert dict(row) == {
            "state": "claimed",
            "claimed_by": winner.id,
            "status": "active",
            "escalated_to_id": winner.id,
        }

    claimed_events = [
        e for e in await inbox_events(inbox_redis, acme.account_id) if e["type"] == "handoff_claimed"
    ]
    assert len(claimed_events) == ROUNDS


async def test_ten_concurrent_creates_with_one_key_make_one_handoff_and_ten_equal_answers(
    replicas: TwoReplicas, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = replicas.tenant
    tech = await acme.user()
    await acme.user("owner")
    session_id = await acme.session(tech)
    headers = {**tech.headers, "Idempotency-Key": f"double-click-{uuid.uuid4()}"}
    body = {"intent": "escalate", "engineer_notes": "Printer on fire", "priority": "high"}

    answers = await asyncio.gather(
        *(
            replicas.post(i, f"/sessions/{session_id}/handoffs", headers, body)
            for i in range(CONCURRENT_CREATES)
        )
    )

    assert [status for status, _ in answers] == [201] * CONCURRENT_CREATES
    assert all(answer == answers[0][1] for _, answer in answers)
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 1
    assert await db.fetchval("SELECT handoff_count FROM ai_sessions WHERE id = $1", session_id) == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 6  # 5 jobs + the announcement
    assert await db.fetchval("SELECT count(*) FROM app_notifications") == 1
    assert [e["type"] for e in await inbox_events(inbox_redis, acme.account_id)] == ["handoff_created"]


async def test_one_key_raced_over_ten_sessions_creates_one_handoff_and_refuses_the_rest(
    replicas: TwoReplicas, db: asyncpg.Connection
) -> None:
    acme = replicas.tenant
    tech = await acme.user()
    sessions = [await acme.session(tech) for _ in range(CONCURRENT_CREATES)]
    headers = {**tech.headers, "Idempotency-Key": "one-key"}

    answers = await asyncio.gather(
        *(
            replicas.post(i, f"/sessions/{session_id}/handoffs", headers, {"intent": "park"})
            for i, session_id in enumerate(sessions)
        )
    )

    assert sorted(status for status, _ in answers) == [201] + [422] * (CONCURRENT_CREATES - 1)
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 1
    assert await db.fetchval("SELECT count(*) FROM ai_sessions WHERE status = 'paused'") == 1


async def test_ten_concurrent_creates_without_a_key_make_one_handoff(
    replicas: TwoReplicas, db: asyncpg.Connection
) -> None:
    acme = replicas.tenant
    tech = await acme.user()
    session_id = await acme.session(tech)

    answers = await asyncio.gather(
        *(
            replicas.post(i, f"/sessions/{session_id}/handoffs", tech.headers, {"intent": "park"})
            for i in range(CONCURRENT_CREATES)
        )
    )

    assert sorted(status for status, _ in answers) == [201] + [409] * (CONCURRENT_CREATES - 1)
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 1


async def test_escalating_a_parked_session_while_its_park_is_being_claimed_never_fails(
    replicas: TwoReplicas, db: asyncpg.Connection
) -> None:
    acme = replicas.tenant
    tech = await acme.user()
    claimers = [await acme.user("engineer") for _ in range(CONCURRENT_CREATES)]

    for _ in range(ROUNDS):
        session_id = await acme.session(tech)
        park_id = (await acme.handed_off(tech, session_id, "park"))["id"]

        escalation, *claims = await asyncio.gather(
            replicas.post(0, f"/sessions/{session_id}/handoffs", tech.headers, {"intent": "escalate"}),
            *(replicas.post(i, f"/handoffs/{park_id}/claim", c.headers) for i, c in enumerate(claimers, 1)),
        )

        # Either the escalation superseded the park (every claim is refused), or a claim won
        # the park first and the escalation then escalated the session it had made active.
        assert escalation[0] == 201, escalation
        claim_statuses = sorted(status for status, _ in claims)
        assert claim_statuses in ([409] * len(claims), [200] + [409] * (len(claims) - 1)), claims
        park_state = await db.fetchval("SELECT state FROM session_handoffs WHERE id = $1", uuid.UUID(park_id))
        assert park_state == ("claimed" if claim_statuses[0] == 200 else "superseded")
        assert (
            await db.fetchval(
                "SELECT count(*) FROM session_handoffs WHERE session_id = $1 AND state = 'open'", session_id
            )
            == 1
        )
