"""The outbox: jobs committed while Redis is unreachable still run, once, when it is back;
any number of relays share the rows without sending one twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
import redis

from tests.api.conftest import new_tenant
from tests.conftest import BatonProcesses
from tests.fakes.smtp import FakeSmtp
from tests.fakes.tcp_proxy import TcpProxy

from .conftest import escalation_session, eventually, settled, worker_env

WAIT_S = 40
CLICK_PATH_BUDGET_S = 2.0


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(redis_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


async def test_jobs_committed_while_redis_is_down_are_relayed_once_it_is_back(
    baton: BatonProcesses,
    db: asyncpg.Connection,
    redis_proxy: TcpProxy,
    smtp: FakeSmtp,
) -> None:
    server = baton.serve(env={"REDIS_URL": redis_proxy.url})
    worker = baton.worker(env={**worker_env(smtp.env()), "REDIS_URL": redis_proxy.url})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http)
        tech = await acme.user(name="Tess Tech")
        seniors = [await acme.user("engineer") for _ in range(3)]
        session_id = await escalation_session(acme, tech)

        redis_proxy.down()
        started = time.monotonic()
        created = await acme.handed_off(tech, session_id, "escalate")
        took_s = time.monotonic() - started
    assert took_s < CLICK_PATH_BUDGET_S, f"the create waited {took_s:.1f} s on a dead Redis"

    async def tried_and_refused() -> bool:
        # Woken by the commit, the worker's relay tried: Redis refused, the rows wait.
        rows = await db.fetch("SELECT attempts FROM outbox WHERE sent_at IS NULL")
        return len(rows) == 6 and all(row["attempts"] >= 1 for row in rows)  # 5 jobs + the announcement

    await eventually(tried_and_refused, WAIT_S, "the relay to try while Redis is down", worker.log)
    assert "left unsent, Redis refused" in worker.log()

    redis_proxy.up()

    async def relayed() -> bool:
        return not await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")

    await eventually(relayed, WAIT_S, "the relay to send the jobs", worker.log)

    async def assessed() -> bool:
        return bool(
            await db.fetchval(
                "SELECT assessment_status = 'ready' FROM session_handoffs WHERE id = $1",
                uuid.UUID(created["id"]),
            )
        )

    await eventually(assessed, WAIT_S, "the assessment", worker.log)
    await eventually(lambda: _at_least(smtp, 3), WAIT_S, "the e-mails", worker.log)
    await settled(lambda: _at_least(smtp, 0))  # nothing more arrives
    assert smtp.count_by_recipient() == {f"{s.id.hex[:8]}@example.com": 1 for s in seniors}


async def test_concurrent_relays_send_each_unsent_row_exactly_once(
    db: asyncpg.Connection, redis_url: str
) -> None:
    from actors.broker import broker
    from actors.outbox import relay_unsent
    from tests.api.conftest import running_client  # its app starts the Piccolo pool the relays use

    account_id = uuid.uuid4()
    await db.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Relay')", account_id)
    rows = 120
    await db.execute(
        """
        INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
        SELECT gen_random_uuid(), $1, 'notify_chat',
               jsonb_build_object('handoff_id', gen_random_uuid()::text), 0, now() - interval '1 minute'
        FROM generate_series(1, $2)
        """,
        account_id,
        rows,
    )
    async for _ in running_client():
        sent = await asyncio.gather(*(relay_unsent() for _ in range(4)))

    assert sum(sent) == rows
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL OR attempts <> 1") == 0
    client = redis.Redis.from_url(redis_url)
    try:
        queued = client.hlen(f"{broker.namespace}:notify.msgs")
    finally:
        client.close()
    assert queued == rows


async def test_sent_rows_are_pruned_after_a_day_and_unsent_ones_never(db: asyncpg.Connection) -> None:
    from actors.outbox import prune
    from tests.api.conftest import running_client

    account_id = uuid.uuid4()
    await db.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Prune')", account_id)
    for sent_at in ("now() - interval '2 days'", "now() - interval '1 hour'", "NULL"):
        await db.execute(
            f"INSERT INTO outbox (id, account_id, actor_name, payload, created_at, sent_at) "
            f"VALUES (gen_random_uuid(), $1, 'notify_chat', '{{}}', now() - interval '3 days', {sent_at})",
            account_id,
        )
    async for _ in running_client():  # the real app: its lifespan opens the pool prune() uses
        assert await prune() == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 2


async def _at_least(smtp: FakeSmtp, n: int) -> int:
    return len(smtp.messages()) if len(smtp.messages()) >= n else 0
