"""Rate limits per caller, counted in Redis and so shared by every replica."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import API, assert_problem, new_tenant
from tests.conftest import BatonProcesses

LOW_LIMITS = {
    "BATON_RATE_LIMIT_WRITES_PER_MINUTE": "5",
    "BATON_RATE_LIMIT_INBOX_CONNECTS_PER_MINUTE": "3",
}


async def test_writes_over_the_limit_get_429_with_retry_after_on_every_replica(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    replica_a, replica_b = baton.serve(env=LOW_LIMITS), baton.serve(env=LOW_LIMITS)
    async with (
        httpx.AsyncClient(base_url=replica_a.base_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=replica_b.base_url, timeout=10) as on_b,
    ):
        acme = await new_tenant(db, on_a, "Acme MSP")
        teams = [uuid.uuid4() for _ in range(6)]
        answers = []
        # Alternating replicas: only a count both share stops the sixth.
        for n, team_id in enumerate(teams):
            http = on_a if n % 2 == 0 else on_b
            answers.append(
                await http.put(f"{API}/teams/{team_id}", json={"name": f"Team {n}"}, headers=acme.host_app)
            )
        assert [a.status_code for a in answers[:5]] == [201] * 5
        refused = assert_problem(answers[5], 429)
        retry_after = int(answers[5].headers["Retry-After"])
        assert 1 <= retry_after <= 12  # one write's share of a minute
        assert refused["retry_after_s"] == retry_after
        assert "Too many writes" in refused["detail"]

        # Reads are not limited, and another caller has an allowance of its own.
        assert (await on_b.get(f"{API}/sessions/{uuid.uuid4()}", headers=acme.host_app)).status_code == 404
        globex = await new_tenant(db, on_b, "Globex")
        answer = await on_b.put(f"{API}/teams/{uuid.uuid4()}", json={"name": "Desk"}, headers=globex.host_app)
        assert answer.status_code == 201
        # Nothing was written by the refused call.
        assert await db.fetchval("SELECT count(*) FROM teams WHERE account_id = $1", acme.account_id) == 5


@pytest.mark.parametrize("concurrent", [12])
async def test_concurrent_writes_never_get_past_the_limit_together(
    baton: BatonProcesses, db: asyncpg.Connection, concurrent: int
) -> None:
    replica_a, replica_b = baton.serve(env=LOW_LIMITS), baton.serve(env=LOW_LIMITS)
    async with (
        httpx.AsyncClient(base_url=replica_a.base_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=replica_b.base_url, timeout=10) as on_b,
    ):
        acme = await new_tenant(db, on_a, "Acme MSP")
        answers = await asyncio.gather(
            *(
                (on_a if n % 2 else on_b).put(
                    f"{API}/teams/{uuid.uuid4()}", json={"name": f"T{n}"}, headers=acme.host_app
                )
                for n in range(concurrent)
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 5 + [429] * (concurrent - 5)


async def test_inbox_connects_over_the_limit_are_closed_with_4429(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve(env=LOW_LIMITS)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        senior = await acme.user("engineer")
    token = senior.headers["Authorization"].removeprefix("Bearer ")
    url = server.base_url.replace("http://", "ws://") + f"{API}/inbox"

    async def open_inbox() -> str:
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "auth", "token": token}))
            try:
                return str(json.loads(await asyncio.wait_for(socket.recv(), 10))["type"])
            except ConnectionClosed as closed:
                frame = closed.rcvd
        return f"closed {frame.code}: {frame.reason}" if frame else "dropped"

    answers = [await open_inbox() for _ in range(4)]
    assert answers[:3] == ["hello"] * 3
    assert answers[3].startswith("closed 4429: too many connects; retry in ")
