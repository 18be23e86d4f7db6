"""Background work against local fakes of the outside world, through real ``baton worker``s.

Tenants are built through the API (the in-process app of ``tests.api``, or a real
``baton serve`` where the test says so); the fakes are real servers on free ports that
the worker reaches through the same settings it would use in production.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import API, Person, Tenant, client, inbox_redis, new_tenant, tenant
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.chat import FakeWebhooks
from tests.fakes.psa import FakeAutotask, FakeConnectWise, FakeHaloPsa, FakePsa
from tests.fakes.smtp import FakeSmtp

__all__ = ["client", "inbox_redis", "tenant"]  # the fixtures of tests.api, shared

POLL_S = 0.05

# What every worker of these tests runs with: quick to notice a crash, quick to relay,
# and never a real AI, SMTP server or webhook by accident.
FAST_WORKER_ENV = {
    "ANTHROPIC_API_KEY": "",
    "ANTHROPIC_BASE_URL": "",
    "SMTP_URL": "",
    "BATON_OUTBOX_SWEEP_INTERVAL_S": "0.5",
    "BATON_DELIVERY_TIMEOUT_S": "2",
    "BATON_AI_TIMEOUT_S": "5",
    "BATON_AI_MAX_RETRIES": "1",
    "BATON_PUBLIC_URL": "https://baton.example",
    "FRONTEND_URL": "https://app.example",
}


def worker_env(*parts: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(FAST_WORKER_ENV)
    for part in parts:
        env.update(part)
    env.update(extra)
    return env


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout_s: float, what: str, log: Callable[[], str] | None = None
) -> Any:
    """Poll ``check`` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n--- worker log ---\n{log()[-6000:]}" if log else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
        await asyncio.sleep(POLL_S)


async def announcements_sent(db: asyncpg.Connection, account_id: uuid.UUID, count: int) -> bool:
    """The account's ``count`` ``announce_events`` outbox rows are all sent: a relay has
    published their events (or found them out already), and will not again."""
    sent = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE account_id = $1 AND actor_name = 'announce_events' "
        "AND sent_at IS NOT NULL",
        account_id,
    )
    return bool(sent == count)


async def settled(check: Callable[[], Awaitable[Any]], quiet_s: float = 1.0) -> Any:
    """``check``'s value once it has stopped changing for ``quiet_s`` (nothing more is coming)."""
    last = await check()
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet_s:
        await asyncio.sleep(POLL_S * 2)
        now = await check()
        if now != last:
            last, stable_since = now, time.monotonic()
    return last


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set variables of this process's environment, and the settings read from it, for one test."""
    from settings import get_settings

    def set_env(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


# ------------------------------------------------------------------ fakes


@pytest.fixture
def ai() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp() as fake:
        yield fake


@pytest.fixture
def webhooks() -> Iterator[FakeWebhooks]:
    with FakeWebhooks() as fake:
        yield fake


@pytest.fixture
def connectwise() -> Iterator[FakeConnectWise]:
    with FakeConnectWise() as fake:
        yield fake


@pytest.fixture
def autotask() -> Iterator[FakeAutotask]:
    with FakeAutotask() as fake:
        yield fake


@pytest.fixture
def halopsa() -> Iterator[FakeHaloPsa]:
    with FakeHaloPsa() as fake:
        yield fake


# ------------------------------------------------------------------ tenants


def psa_base_url(fake: FakePsa) -> str:
    return fake.lookup_url if isinstance(fake, FakeAutotask) else fake.url


async def connect_psa(acme: Tenant, fake: FakePsa, member_mapping: dict[str, str] | None = None) -> uuid.UUID:
    connection_id = uuid.uuid4()
    response = await acme.put(
        f"/psa-connections/{connection_id}",
        {
            "kind": fake.kind,
            "base_url": psa_base_url(fake),
            "credentials": fake.credentials,
            "member_mapping": member_mapping or {},
        },
    )
    assert response.status_code == 201, response.text
    return connection_id


async def add_channel(acme: Tenant, kind: str, url: str) -> uuid.UUID:
    channel_id = uuid.uuid4()
    response = await acme.put(f"/channels/{channel_id}", {"kind": kind, "url": url})
    assert response.status_code == 201, response.text
    return channel_id


DIAGNOSTIC_SESSION: dict[str, Any] = {
    "problem_summary": "Outlook cannot connect to Exchange after a password reset",
    "problem_domain": "email",
    "steps": [
        {"step_order": 0, "content": {"text": "Checked OWA"}, "selected_option": "OWA works"},
        {"step_order": 1, "content": {"text": "Restarted Outlook"}, "free_text_input": "Still prompts"},
        {"step_order": 2, "content": {"text": "Cleared the credential cache"}, "was_skipped": True},
    ],
    "conversation_messages": [
        {"role": "user", "content": "It keeps asking for my password"},
        {"role": "assistant", "content": "Let us check the credential manager."},
    ],
}


async def escalation_session(acme: Tenant, tech: Person, **fields: Any) -> uuid.UUID:
    return await acme.session(tech, **{**DIAGNOSTIC_SESSION, **fields})


@pytest.fixture
async def acme(tenant: Callable[..., Awaitable[Tenant]]) -> Tenant:
    return await tenant("Acme MSP")


async def row(db: asyncpg.Connection, sql: str, *args: Any) -> asyncpg.Record | None:
    found: asyncpg.Record | None = await db.fetchrow(sql, *args)
    return found


@pytest.fixture
async def served_client(baton: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of a real ``baton serve`` process (for the end-to-end tests)."""
    server = baton.serve()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        yield http


__all__ += ["API", "new_tenant"]


# -- escalation policies (SPEC second edition) --


async def put_policy(acme: Tenant, body: dict[str, Any], policy_id: uuid.UUID | None = None) -> uuid.UUID:
    policy_id = policy_id or uuid.uuid4()
    response = await acme.put(f"/escalation-policies/{policy_id}", {"name": "Escalations", **body})
    assert response.status_code in (200, 201), response.text
    return policy_id


def tier(after_s: int, channels: list[str], **notify: Any) -> dict[str, Any]:
    return {"after_s": after_s, "channels": channels, "notify": notify}
