"""The click path stays fast: ``POST /handoffs`` with the outside world instant vs slow.

    uv run python bench/click_path.py [--creates 300] [--block 10] [--seniors 5]

Starts its own embedded Postgres and Redis, one ``baton serve``, one ``baton worker``
(2 processes) and, in this process, the outside world: a Messages API, a ConnectWise
API, Slack/Teams webhooks and an SMTP server. Every escalation has a PSA ticket, so each
one sets the AI, the PSA, chat and ``--seniors`` e-mails to work.

Escalations are created one after another, in blocks that alternate between:

- **instant**: every outside server answers at once (the baseline);
- **slow**: the AI answers after 20 s and the PSA hangs (no answer for 30 s).

Alternating blocks share whatever drifts during the run; before each block the e-mails of
the previous one are all sent (the AI and PSA calls of slow blocks stay in flight, as in
a real outage), so no block pays for its predecessor's fan-out.
Latency is the client's, request sent to response read (aiohttp). Reported: p50/p99 per
world and slow/instant ratios (target ≤ 1.2). Results: bench/results/click_path.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.background_stack import (
    RESULTS_DIR,
    ROOT,
    Stack,
    percentiles,
    seed_account,
    seed_sessions,
)
from tests.fakes.anthropic_api import GOOD_ASSESSMENT, FakeAnthropic, tool
from tests.fakes.chat import FakeWebhooks
from tests.fakes.psa import FakeConnectWise
from tests.fakes.smtp import FakeSmtp

RESULTS = RESULTS_DIR / "click_path.json"
SLOW_AI_S = 20.0
HANGING_PSA_S = 30.0
WARMUP_CREATES = 20
TARGET_RATIO = 1.2
DRAIN_TIMEOUT_S = 60.0
SETTLE_S = 0.5

UNSENT_EMAILS = "SELECT count(*) FROM deliveries WHERE channel = 'email' AND status <> 'sent'"
UNSENT_JOBS = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"


async def drained(database_url: str, expected_emails: int) -> None:
    """Until every e-mail created so far is sent: the worker is back to waiting."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            total = await conn.fetchval("SELECT count(*) FROM deliveries WHERE channel = 'email'")
            if (
                total >= expected_emails
                and not await conn.fetchval(UNSENT_EMAILS)
                and not await conn.fetchval(UNSENT_JOBS)
            ):
                await asyncio.sleep(SETTLE_S)
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the worker did not catch up with the e-mails")
    finally:
        await conn.close()


def set_world(slow: bool, ai: FakeAnthropic, psa: FakeConnectWise) -> None:
    ai.always(tool(GOOD_ASSESSMENT, delay_s=SLOW_AI_S if slow else 0.0))
    psa.hang_s = HANGING_PSA_S if slow else 0.0


async def connect_outside_world(
    database_url: str, account_id: uuid.UUID, psa: FakeConnectWise, webhooks: FakeWebhooks
) -> uuid.UUID:
    conn = await asyncpg.connect(database_url)
    try:
        connection_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO psa_connections (id, account_id, kind, base_url, credentials, member_mapping) "
            "VALUES ($1, $2, 'connectwise', $3, $4::jsonb, '{}'::jsonb)",
            connection_id,
            account_id,
            psa.url,
            json.dumps(psa.credentials),
        )
        for kind, url in (("slack", webhooks.slack_url), ("teams", webhooks.teams_url)):
            await conn.execute(
                "INSERT INTO notification_channels (id, account_id, kind, url, enabled) "
                "VALUES ($1, $2, $3, $4, true)",
                uuid.uuid4(),
                account_id,
                kind,
                url,
            )
    finally:
        await conn.close()
    return connection_id


async def create(http: aiohttp.ClientSession, base_url: str, token: str, session_id: uuid.UUID) -> float:
    started = time.perf_counter()
    async with http.post(
        f"{base_url}/api/v1/sessions/{session_id}/handoffs",
        json={"intent": "escalate", "engineer_notes": "Needs a senior", "priority": "high"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        await response.read()
        assert response.status == 201, response.status
    return (time.perf_counter() - started) * 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # Other work on the machine skews every figure: recorded with them.
    load_before = round(os.getloadavg()[0], 2)
    stack = Stack().start()
    ai, psa, webhooks = FakeAnthropic().start(), FakeConnectWise().start(), FakeWebhooks().start()
    smtp = FakeSmtp().up()
    try:
        seeded = await seed_account(stack.database_url, args.seniors)
        connection_id = await connect_outside_world(stack.database_url, seeded.account_id, psa, webhooks)
        sessions = await seed_sessions(
            stack.database_url,
            seeded,
            WARMUP_CREATES + 2 * args.creates,
            {"psa_ticket_id": "4242", "psa_connection_id": connection_id},
        )
        base_url = stack.serve()
        stack.worker(
            env={
                **ai.env(),
                "SMTP_URL": smtp.url,
                "BATON_AI_TIMEOUT_S": str(SLOW_AI_S + 10),
                # The PSA and webhook fakes listen on loopback, which the outbound rule
                # refuses unless allowed: refused, the slow PSA would not be slow at all.
                "BATON_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8",
            },
            processes=2,
            threads=8,
        )
        stack.wait_for_workers(2)

        samples: dict[str, list[float]] = {"instant": [], "slow": []}
        todo = iter(sessions)
        async with aiohttp.ClientSession() as http:
            set_world(False, ai, psa)
            created = 0
            for _ in range(WARMUP_CREATES):
                await create(http, base_url, seeded.tech_token, next(todo))
                created += 1
            blocks = 2 * (args.creates // args.block)
            print(f"{blocks} blocks of {args.block} creates, alternating instant / slow …", flush=True)
            for block in range(blocks):
                await drained(stack.database_url, created * args.seniors)
                world = "slow" if block % 2 else "instant"
                set_world(world == "slow", ai, psa)
                for _ in range(args.block):
                    created += 1
                    samples[world].append(await create(http, base_url, seeded.tech_token, next(todo)))
                p50 = percentiles(samples[world])["p50_ms"]
                print(f"  {world:<7} block {block + 1}: p50 so far {p50} ms", flush=True)
        instant, slow = percentiles(samples["instant"]), percentiles(samples["slow"])
        return {
            "benchmark": "click_path",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": load_before},
            "creates_per_world": len(samples["instant"]),
            "block": args.block,
            "seniors_emailed_per_escalation": args.seniors,
            "slow_world": {"ai_answers_after_s": SLOW_AI_S, "psa_hangs_s": HANGING_PSA_S},
            "instant_world_create_ms": instant,
            "slow_world_create_ms": slow,
            "ratio_p50_slow_to_instant": round(slow["p50_ms"] / instant["p50_ms"], 3),
            "ratio_p99_slow_to_instant": round(slow["p99_ms"] / instant["p99_ms"], 3),
            "ai_calls_seen": len(ai.calls),
            "slowest_instant_ms": sorted(samples["instant"])[-5:],
            "slowest_slow_ms": sorted(samples["slow"])[-5:],
            "targets": {"ratio": TARGET_RATIO},
        }
    finally:
        stack.stop()
        for fake in (ai, psa, webhooks):
            fake.stop()
        smtp.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--creates", type=int, default=300, help="creates per world")
    parser.add_argument("--block", type=int, default=10, help="creates per block of one world")
    parser.add_argument("--seniors", type=int, default=5, help="seniors e-mailed per escalation")
    result = asyncio.run(run(parser.parse_args()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    keys = (
        "instant_world_create_ms",
        "slow_world_create_ms",
        "ratio_p50_slow_to_instant",
        "ratio_p99_slow_to_instant",
    )
    print(json.dumps({k: result[k] for k in keys}, indent=1))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
