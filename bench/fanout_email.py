"""E-mail fan-out: one escalation in an account of 1,000 seniors, until every one has it.

    uv run python bench/fanout_email.py [--seniors 1000] [--runs 3]

Starts its own embedded Postgres and Redis, one ``baton serve`` and one ``baton worker``
(2 processes, 8 threads each), and a local SMTP server (aiosmtpd, in this process).

1. **Baseline**: this process sends the same number of messages straight to the SMTP
   server with aiosmtplib over 8 connections: the floor set by the server and the machine.
2. **Baton**: ``POST /handoffs`` (escalate) and the clock runs until the SMTP server has
   accepted one message per senior: outbox hand-over, fan-out into batches, ledger claim
   and mark around every send, across both worker processes.

Each is run ``--runs`` times; medians are reported, and Baton's ratio to the baseline.
Duplicates are messages beyond one per recipient. The CPU seconds each part used per
escalation are reported too: unlike the wall times, they do not depend on what else the
machine is running. Results: bench/results/fanout_email.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.background_stack import RESULTS_DIR, ROOT, Stack, seed_account, seed_sessions
from tests.fakes.smtp import FakeSmtp

RESULTS = RESULTS_DIR / "fanout_email.json"
BASELINE_CONNECTIONS = 8
RUN_TIMEOUT_S = 60.0
POLL_S = 0.02
TARGET_S = 10.0


async def baseline(smtp: FakeSmtp, recipients: list[str]) -> float:
    """Seconds for this process to hand every message to the SMTP server itself."""
    todo = list(recipients)

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, local_hostname="bench")
        await client.connect()
        try:
            while todo:
                message = EmailMessage()
                message["From"], message["To"] = "baton@bench.example", todo.pop()
                message["Subject"] = "New escalation: Printer offline on floor 3"
                message.set_content("A teammate has escalated a session and is asking for help.")
                await client.send_message(message)
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(BASELINE_CONNECTIONS)))
    return time.perf_counter() - started


async def baton_run(
    http: aiohttp.ClientSession, base_url: str, token: str, session_id: Any, smtp: FakeSmtp, expected: int
) -> tuple[float, float]:
    """(seconds until every message was accepted, seconds the create took)."""
    already = len(smtp.received)
    started = time.perf_counter()
    async with http.post(
        f"{base_url}/api/v1/sessions/{session_id}/handoffs",
        json={"intent": "escalate", "engineer_notes": "Floor 3 cannot print", "priority": "high"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 201, await response.text()
    created_s = time.perf_counter() - started
    deadline = started + RUN_TIMEOUT_S
    while len(smtp.received) - already < expected:
        if time.perf_counter() > deadline:
            got = len(smtp.received) - already
            raise RuntimeError(f"only {got} of {expected} e-mails in {RUN_TIMEOUT_S} s")
        await asyncio.sleep(POLL_S)
    return time.perf_counter() - started, created_s


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # Other work on the machine skews every figure: recorded with them.
    load_before = round(os.getloadavg()[0], 2)
    stack = Stack().start()
    smtp = FakeSmtp().up()
    try:
        seeded = await seed_account(stack.database_url, args.seniors)
        sessions = await seed_sessions(stack.database_url, seeded, args.runs)

        print(f"baseline: aiosmtplib → SMTP, {args.seniors} messages, {BASELINE_CONNECTIONS} connections …")
        baseline_s = []
        for _ in range(args.runs):
            baseline_s.append(await baseline(smtp, seeded.senior_emails))
            print(f"  {baseline_s[-1]:.2f} s", flush=True)
        smtp.received.clear()

        base_url = stack.serve()
        stack.worker(env={"SMTP_URL": smtp.url}, processes=2, threads=8)
        stack.wait_for_workers(2)
        print(f"baton: escalate → {args.seniors} e-mails, worker of 2 processes …", flush=True)
        runs: list[dict[str, float]] = []
        cpu_before = stack.cpu_by_part()
        async with aiohttp.ClientSession() as http:
            for session_id in sessions:
                total_s, create_s = await baton_run(
                    http, base_url, seeded.tech_token, session_id, smtp, args.seniors
                )
                runs.append({"all_delivered_s": round(total_s, 3), "create_s": round(create_s, 4)})
                print(f"  {total_s:.2f} s (create answered in {create_s * 1000:.0f} ms)", flush=True)
                await asyncio.sleep(1.0)  # let stragglers (duplicates) show up before the next run
        cpu_after = stack.cpu_by_part()
        cpu_per_run = {part: round((cpu_after[part] - cpu_before[part]) / args.runs, 2) for part in cpu_after}

        per_recipient = smtp.count_by_recipient()
        duplicates = sum(count - args.runs for count in per_recipient.values() if count > args.runs)
        missing = sum(1 for email in seeded.senior_emails if per_recipient.get(email, 0) < args.runs)
        conn = await asyncpg.connect(stack.database_url)
        try:
            ledger = dict(
                await conn.fetch(
                    "SELECT status, count(*) FROM deliveries WHERE channel = 'email' GROUP BY status"
                )
            )
        finally:
            await conn.close()
        baton_median = statistics.median(r["all_delivered_s"] for r in runs)
        baseline_median = statistics.median(baseline_s)
        return {
            "benchmark": "fanout_email",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": load_before},
            "seniors": args.seniors,
            "runs": args.runs,
            "worker": {"processes": 2, "threads": 8},
            "baseline_direct_smtp_s": {
                "runs": [round(s, 3) for s in baseline_s],
                "median": round(baseline_median, 3),
                "connections": BASELINE_CONNECTIONS,
            },
            "baton_escalate_to_all_delivered_s": {"runs": runs, "median": round(baton_median, 3)},
            "ratio_to_baseline": round(baton_median / baseline_median, 2),
            # Independent of what else the machine runs: CPU seconds of each part per escalation.
            "cpu_s_per_escalation": cpu_per_run,
            "emails_per_s": round(args.seniors / baton_median, 1),
            "duplicates": duplicates,
            "missing": missing,
            "ledger": {str(k): int(v) for k, v in ledger.items()},
            "targets": {"all_delivered_s": TARGET_S, "duplicates": 0},
        }
    finally:
        stack.stop()
        smtp.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seniors", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    result = asyncio.run(run(parser.parse_args()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ratio_to_baseline", "emails_per_s", "duplicates", "missing")}))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
