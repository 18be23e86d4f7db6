"""Escalation-policy tiers sent by real worker processes, with waits of seconds: each
tier's e-mails and chat posts reach exactly its recipients once, the inbox hears each
tier and the breach, a claim stops what is left, and a worker SIGKILLed while a tier is
sending still leaves everyone with exactly one copy."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from typing import Any

import asyncpg
import redis.asyncio

from inbox import keys
from tests.api.conftest import Person, Tenant
from tests.conftest import BatonProcesses
from tests.fakes.chat import FakeWebhooks
from tests.fakes.smtp import FakeSmtp

from .conftest import add_channel, escalation_session, eventually, put_policy, settled, tier, worker_env
from .test_worker_crash import CRASH_ENV, descendants

WAIT_S = 60


def address(person: Person) -> str:
    return f"{person.id.hex[:8]}@example.com"


async def stream_events(redis_url: str, account_id: uuid.UUID) -> list[dict[str, Any]]:
    import msgspec

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(keys.stream(account_id), "-", "+")
    finally:
        await client.aclose()
    return [msgspec.json.decode(fields[b"e"]) for _, fields in entries]


async def schedule_done(db: asyncpg.Connection, handoff_id: str) -> bool:
    """No tier left to fire, and every message of the ones fired is sent."""
    row = await db.fetchrow(
        "SELECT tier_next, (SELECT count(*) FROM deliveries d WHERE d.handoff_id = h.id "
        "AND d.status <> 'sent') AS unsent FROM session_handoffs h WHERE id = $1",
        uuid.UUID(handoff_id),
    )
    return bool(row and row["tier_next"] is None and row["unsent"] == 0)


async def test_three_tiers_and_a_second_round_reach_exactly_their_recipients_once(
    baton: BatonProcesses,
    acme: Tenant,
    db: asyncpg.Connection,
    smtp: FakeSmtp,
    webhooks: FakeWebhooks,
    redis_url: str,
) -> None:
    tech = await acme.user(name="Tess Tech")
    engineers = [await acme.user("engineer", name=f"Eli {n}") for n in range(2)]
    admin = await acme.user("admin", name="Ada Admin")
    owner = await acme.user("owner", name="Olu Owner")
    await add_channel(acme, "slack", webhooks.slack_url)
    await add_channel(acme, "teams", webhooks.teams_url)
    await put_policy(
        acme,
        {
            "tiers": [
                tier(0, ["email"], roles=["engineer"]),
                tier(1, ["email", "slack"], roles=["admin"]),
                tier(1, ["email", "teams", "bell"], user_ids=[str(owner.id)]),
            ],
            "repeat": 1,
            "sla_claim_s": {"normal": 2},
        },
    )
    worker = baton.worker(env=worker_env(smtp.env()))
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")

    await eventually(lambda: schedule_done(db, created["id"]), WAIT_S, "every tier and round", worker.log)
    await settled(lambda: _count(smtp), quiet_s=1.5)

    by_recipient = smtp.count_by_recipient()
    # Tier 0 once to each engineer; tiers 1 and 2 in each of the two rounds.
    assert by_recipient == Counter(
        {address(e): 1 for e in engineers} | {address(admin): 2, address(owner): 2}
    )
    subjects = {m.to: m.subject for m in smtp.messages()}
    assert subjects[address(engineers[0])].startswith("New escalation:")
    assert subjects[address(admin)].startswith("Still open:")
    assert (len(webhooks.slack), len(webhooks.teams)) == (2, 2)
    assert address(tech) not in by_recipient  # never the creator

    events = await stream_events(redis_url, acme.account_id)
    tiers = [(e["tier"], e["round"]) for e in events if e["type"] == "handoff_tier_notified"]
    assert tiers == [(0, 1), (1, 1), (2, 1), (1, 2), (2, 2)]
    first = next(e for e in events if e["type"] == "handoff_tier_notified")
    assert sorted(r["name"] for r in first["recipients"]) == ["Eli 0", "Eli 1"]
    breaches = [e for e in events if e["type"] == "handoff_sla_breached"]
    assert len(breaches) == 1 and breaches[0]["handoff_id"] == created["id"]


async def test_a_claim_between_tiers_stops_the_rest(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    tech = await acme.user(name="Tess Tech")
    engineer = await acme.user("engineer")
    admin = await acme.user("admin")
    owner = await acme.user("owner")
    await put_policy(
        acme,
        {
            "tiers": [
                tier(0, ["email"], roles=["engineer"]),
                tier(1, ["email"], roles=["admin"]),
                tier(3, ["email"], roles=["owner"]),
            ]
        },
    )
    worker = baton.worker(env=worker_env(smtp.env()))
    # Ready before the create: a worker booting slower than the tiers' waits would find
    # them all due at once, and tier 2 could go out before the claim below.
    await eventually(lambda: _engine_started(worker.log), WAIT_S, "the worker's tier engine", worker.log)
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    handoff_id = uuid.UUID(created["id"])

    async def tier_1_fired() -> bool:
        last = await db.fetchval("SELECT last_tier->>'tier' FROM session_handoffs WHERE id = $1", handoff_id)
        return last == "1"

    await eventually(tier_1_fired, WAIT_S, "tier 1", worker.log)
    assert (await acme.claim(engineer, created["id"])).status_code == 200
    # Tier 2 was due 3 s after tier 1; past that, nothing more has come.
    row = await db.fetchrow("SELECT tier_due_at FROM session_handoffs WHERE id = $1", handoff_id)
    due_at = row["tier_due_at"]

    async def past_tier_2() -> bool:
        return bool(await db.fetchval("SELECT now() > $1::timestamptz + interval '1 second'", due_at))

    await eventually(past_tier_2, WAIT_S, "tier 2's due time to pass")

    async def admin_told() -> bool:
        return smtp.count_by_recipient()[address(admin)] == 1

    await eventually(admin_told, WAIT_S, "tier 1's e-mail", worker.log)  # fired before the claim: it goes out
    assert smtp.count_by_recipient()[address(owner)] == 0
    assert sorted(smtp.count_by_recipient()) == sorted([address(engineer), address(admin)])


async def test_a_worker_killed_while_a_tier_is_sending_leaves_everyone_exactly_one_copy(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    tech = await acme.user(name="Tess Tech")
    engineers = [await acme.user("engineer") for _ in range(12)]
    admin = await acme.user("admin")
    await put_policy(
        acme, {"tiers": [tier(0, ["bell"], roles=["admin"]), tier(1, ["email"], roles=["engineer"])]}
    )
    smtp.rcpt_delay_s = 0.3  # tier 1 takes seconds to send: the kill lands mid-tier
    first = baton.worker(env=worker_env(smtp.env(), CRASH_ENV))
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")

    async def under_way() -> bool:
        return len(smtp.messages()) >= 3

    await eventually(under_way, WAIT_S, "tier 1 to be sending", first.log)
    for pid in [*descendants(first.process.pid), first.process.pid]:
        os.kill(pid, signal.SIGKILL)
    first.process.wait()
    assert len(smtp.messages()) < len(engineers), "tier 1 finished before the kill: slow it down"

    second = baton.worker(env=worker_env(smtp.env(), CRASH_ENV))
    await eventually(lambda: schedule_done(db, created["id"]), WAIT_S, "the tier to finish", second.log)
    await settled(lambda: _count(smtp), quiet_s=1.5)
    assert smtp.count_by_recipient() == Counter({address(e): 1 for e in engineers})
    bells = await db.fetchval(
        "SELECT count(*) FROM app_notifications WHERE handoff_id = $1", uuid.UUID(created["id"])
    )
    assert bells == 1 and admin  # tier 0's one bell, not rung again by the restart


async def _engine_started(log: Any) -> bool:
    return "tier engine started" in log()


async def _count(smtp: FakeSmtp) -> int:
    return len(smtp.messages())
