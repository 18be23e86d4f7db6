"""The API over HTTP: an in-process app on the test's loop, tenants built through the API.

``client`` is httpx over ``ASGITransport`` with the app's real lifespan (Piccolo pool,
Redis) running on the test's own event loop; the race tests use real ``baton serve``
processes instead. ``tenant()`` makes an account (the one row the API cannot make) and
everything else through the host-app PUTs, as the host app would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import redis.asyncio
from litestar import Litestar

from inbox import keys
from server.app import create_app
from server.shutdown import running_tasks_report
from server.tokens import mint_service_token, mint_user_token
from settings import Settings, get_settings
from tests.conftest import TEST_JWT_SECRET, SessionServices

PROBLEM_JSON = "application/problem+json"
# Each XREAD BLOCK within the client's socket timeout (redis-py's default is 5 s).
XREAD_BLOCK_MAX_S = 1.0
API = "/api/v1"


async def _serve_lifespan(app: Litestar, started: asyncio.Event, stop: asyncio.Event) -> None:
    # Entered and left in this one task: the lifespan holds anyio cancel scopes, which
    # refuse to be exited from another task (as a fixture's teardown would be).
    async with app.lifespan():
        started.set()
        await stop.wait()


async def running_client(settings: Settings | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    started, stop = asyncio.Event(), asyncio.Event()
    lifespan = asyncio.create_task(_serve_lifespan(app, started, stop))
    await asyncio.wait([lifespan, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        lifespan.result()  # the startup error
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baton.test") as client:
            yield client
    finally:
        stop.set()
        await _stopped(lifespan)


LIFESPAN_STOP_TIMEOUT_S = 15.0
"""Well past the app's own shutdown deadline (server.shutdown), which logs first."""


async def _stopped(lifespan: asyncio.Task[None]) -> None:
    """The lifespan's shutdown, bounded: a hang fails the test at once, naming every task
    still running and where it waits, instead of waiting out pytest's timeout."""
    await asyncio.wait([lifespan], timeout=LIFESPAN_STOP_TIMEOUT_S)
    if not lifespan.done():
        report = running_tasks_report(asyncio.get_running_loop())
        lifespan.cancel()
        raise AssertionError(
            f"the app's lifespan did not stop within {LIFESPAN_STOP_TIMEOUT_S:.0f} s; {report}"
        )
    lifespan.result()


@pytest.fixture
async def client(services: SessionServices) -> AsyncIterator[httpx.AsyncClient]:
    async for running in running_client():
        yield running


@pytest.fixture
async def inbox_redis(services: SessionServices) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(services.redis_url)
    try:
        yield connection
    finally:
        await connection.aclose()


async def inbox_events(redis_client: redis.asyncio.Redis, account_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every event published to the account's inbox so far, oldest first."""
    entries = await redis_client.xrange(keys.stream(account_id), "-", "+")
    return [msgspec.json.decode(fields[b"e"]) for _, fields in entries]


async def next_inbox_event(
    redis_client: redis.asyncio.Redis,
    account_id: uuid.UUID,
    event_type: str,
    timeout_s: float,
    *,
    after: str = "0-0",
    log: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """The account's first ``event_type`` event after ``after``, waited for on its stream
    (XREAD BLOCK: Redis answers when the event is added, nothing is polled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    stream = keys.stream(account_id)
    cursor: str | bytes = after
    while (left_s := deadline - loop.time()) > 0:
        block_ms = max(1, int(min(left_s, XREAD_BLOCK_MAX_S) * 1000))
        replies = await redis_client.xread({stream: cursor}, count=100, block=block_ms)
        for _, entries in replies or []:
            for entry_id, fields in entries:
                cursor = entry_id
                event: dict[str, Any] = msgspec.json.decode(fields[b"e"])
                if event["type"] == event_type:
                    return event
    detail = f"\n--- log ---\n{log()[-6000:]}" if log else ""
    raise AssertionError(f"no {event_type} in account {account_id}'s inbox within {timeout_s:g} s{detail}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is RFC 9457 problem details of ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


@dataclass
class Person:
    id: uuid.UUID
    name: str
    role: str
    headers: dict[str, str]


@dataclass
class Tenant:
    """An account and what its host app has written, built through the API."""

    client: httpx.AsyncClient
    account_id: uuid.UUID
    host_app: dict[str, str]
    people: list[Person] = field(default_factory=list)

    async def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(f"{API}{path}", json=body, headers=self.host_app)

    async def user(
        self,
        role: str = "technician",
        name: str | None = None,
        *,
        active: bool = True,
        team_id: uuid.UUID | None = None,
    ) -> Person:
        user_id = uuid.uuid4()
        name = name or f"{role.title()} {len(self.people) + 1}"
        body: dict[str, Any] = {
            "email": f"{user_id.hex[:8]}@example.com",
            "name": name,
            "account_role": role,
            "is_active": active,
        }
        if team_id is not None:
            body["team_id"] = str(team_id)
        response = await self.put(f"/users/{user_id}", body)
        assert response.status_code == 201, response.text
        person = Person(user_id, name, role, bearer(mint_user_token(TEST_JWT_SECRET, user_id)))
        self.people.append(person)
        return person

    async def team(self, name: str = "Service desk") -> uuid.UUID:
        team_id = uuid.uuid4()
        response = await self.put(f"/teams/{team_id}", {"name": name})
        assert response.status_code == 201, response.text
        return team_id

    async def session(self, owner: Person, **fields: Any) -> uuid.UUID:
        session_id = uuid.uuid4()
        body: dict[str, Any] = {
            "user_id": str(owner.id),
            "problem_summary": "VPN drops every hour",
            "problem_domain": "network",
            "confidence_tier": "medium",
            "steps": [{"step_order": 0, "content": {"text": "Rebooted the firewall"}}],
            **fields,
        }
        response = await self.put(f"/sessions/{session_id}", body)
        assert response.status_code == 201, response.text
        return session_id

    async def hand_off(
        self, by: Person, session_id: uuid.UUID, intent: str = "escalate", **body: Any
    ) -> httpx.Response:
        headers = dict(by.headers)
        if "idempotency_key" in body:
            headers["Idempotency-Key"] = body.pop("idempotency_key")
        return await self.client.post(
            f"{API}/sessions/{session_id}/handoffs", json={"intent": intent, **body}, headers=headers
        )

    async def handed_off(
        self, by: Person, session_id: uuid.UUID, intent: str = "escalate", **body: Any
    ) -> dict[str, Any]:
        response = await self.hand_off(by, session_id, intent, **body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def claim(self, by: Person, handoff_id: Any) -> httpx.Response:
        return await self.client.post(f"{API}/handoffs/{handoff_id}/claim", headers=by.headers)

    async def release(self, by: Person, handoff_id: Any) -> httpx.Response:
        return await self.client.post(f"{API}/handoffs/{handoff_id}/release", headers=by.headers)

    async def get_session(self, session_id: uuid.UUID) -> dict[str, Any]:
        response = await self.client.get(f"{API}/sessions/{session_id}", headers=self.host_app)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


TenantFactory = Callable[..., Awaitable[Tenant]]


async def new_tenant(conn: asyncpg.Connection, client: httpx.AsyncClient, name: str = "Acme MSP") -> Tenant:
    account_id = uuid.uuid4()
    await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, $2)", account_id, name)
    return Tenant(client, account_id, bearer(mint_service_token(TEST_JWT_SECRET, account_id)))


@pytest.fixture
def tenant(client: httpx.AsyncClient, db: asyncpg.Connection) -> TenantFactory:
    async def make(name: str = "Acme MSP") -> Tenant:
        return await new_tenant(db, client, name)

    return make


# Every table's rows, hashed: "nothing was written" is this value unchanged.
_DATABASE_FINGERPRINT = """
SELECT string_agg(format('SELECT %L || coalesce(md5(string_agg(t::text, %L ORDER BY t::text)), %L) FROM %I t',
                         tablename, ',', '-', tablename), ' UNION ALL ' ORDER BY tablename)
FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'migration'
"""


async def database_fingerprint(conn: asyncpg.Connection) -> list[str]:
    query = await conn.fetchval(_DATABASE_FINGERPRINT)
    return sorted(row[0] for row in await conn.fetch(query))


def settings_with(**changes: Any) -> Settings:
    return msgspec.structs.replace(get_settings(), **changes)
