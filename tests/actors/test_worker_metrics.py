"""A worker pool's Prometheus metrics, on its own port: Dramatiq's and the deliveries'."""

from __future__ import annotations

import asyncio
import urllib.request

import asyncpg
import httpx

from cli.processes import free_port
from tests.api.conftest import new_tenant
from tests.conftest import BatonProcesses, http_status
from tests.fakes.smtp import FakeSmtp
from tests.prometheus_text import samples

from .conftest import escalation_session, eventually, put_policy, tier, worker_env


async def test_a_worker_pool_exports_dramatiq_and_delivery_metrics_on_its_port(
    baton: BatonProcesses, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    server = baton.serve()
    port = free_port()
    worker = baton.worker(env=worker_env(smtp.env(), BATON_WORKER_METRICS_PORT=str(port)))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        tech = await acme.user()
        for _ in range(2):
            await acme.user("engineer")
        await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return str(response.read().decode())

    async def emails_counted() -> str | None:
        if http_status(f"http://127.0.0.1:{port}/") != 200:
            return None
        text = await asyncio.to_thread(scrape)
        sent = samples(text, "baton_delivery_attempts_total").get('{channel="email",outcome="sent"}')
        return text if sent == 2.0 else None

    text = await eventually(emails_counted, 45, "two sent e-mails in the worker's metrics", worker.log)
    processed = samples(text, "dramatiq_messages_total")
    assert any('actor_name="send_escalation_emails"' in labels for labels in processed)
    assert "dramatiq_message_duration_milliseconds_bucket" in text


async def test_tiers_fired_and_sla_breaches_are_counted_by_priority(
    baton: BatonProcesses, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    server = baton.serve()
    port = free_port()
    worker = baton.worker(env=worker_env(smtp.env(), BATON_WORKER_METRICS_PORT=str(port)))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        tech = await acme.user()
        await acme.user("engineer")
        await put_policy(
            acme,
            {
                "tiers": [tier(0, ["bell"], roles=["engineer"]), tier(1, ["bell"], roles=["engineer"])],
                "sla_claim_s": {"urgent": 1},
            },
        )
        await acme.handed_off(tech, await escalation_session(acme, tech), "escalate", priority="urgent")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return str(response.read().decode())

    async def counted() -> str | None:
        if http_status(f"http://127.0.0.1:{port}/") != 200:
            return None
        text = await asyncio.to_thread(scrape)
        fired = samples(text, "baton_tiers_fired_total").get('{priority="urgent"}')
        breached = samples(text, "baton_sla_breaches_total").get('{priority="urgent"}')
        return text if (fired, breached) == (2.0, 1.0) else None

    await eventually(counted, 45, "two tiers and a breach in the worker's metrics", worker.log)
