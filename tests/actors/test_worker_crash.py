"""A worker SIGKILLed in the middle of an e-mail fan-out: a restarted worker finishes the
job, and nobody gets an e-mail twice."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import asyncpg

from tests.api.conftest import Tenant
from tests.conftest import BatonProcesses
from tests.fakes.smtp import FakeSmtp

from .conftest import escalation_session, eventually, settled, worker_env

WAIT_S = 60
SENIORS = 12
# Each RCPT TO is held this long, so the fan-out takes a few seconds and the kill lands
# mid-transaction: before DATA, so the server has not taken that message.
RCPT_DELAY_S = 0.3
CRASH_ENV = {
    "BATON_WORKER_HEARTBEAT_TIMEOUT_MS": "2000",
    "BATON_WORKER_MAINTENANCE_CHANCE_PER_MILLION": "500000",
    "BATON_DELIVERY_TIMEOUT_S": "1",
    # The rows the killed worker held are claimed again once their lease runs out:
    # 8 × 1 s + 2 × 2 s + 15 s (actors/mail_transport.py, send_deadline_s).
    "BATON_SMTP_DATA_TIMEOUT_S": "2",
}


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Dramatiq's worker processes under ``baton worker``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def test_a_fanout_cut_short_by_sigkill_finishes_on_a_restarted_worker_without_duplicates(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    tech = await acme.user(name="Tess Tech")
    seniors = [await acme.user("engineer") for _ in range(SENIORS)]
    smtp.rcpt_delay_s = RCPT_DELAY_S
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    handoff_id = uuid.UUID(created["id"])

    first = baton.worker(env=worker_env(smtp.env(), CRASH_ENV))

    async def some_delivered() -> bool:
        return len(smtp.messages()) >= 3

    await eventually(some_delivered, WAIT_S, "the fan-out to be under way", first.log)
    for pid in [*descendants(first.process.pid), first.process.pid]:
        os.kill(pid, signal.SIGKILL)
    first.process.wait()
    delivered_before_the_kill = len(smtp.messages())
    assert delivered_before_the_kill < SENIORS, "the fan-out finished before the kill: slow it down"

    second = baton.worker(env=worker_env(smtp.env(), CRASH_ENV))

    async def all_sent() -> bool:
        return (
            await db.fetchval(
                "SELECT count(*) FROM deliveries "
                "WHERE handoff_id = $1 AND channel = 'email' AND status = 'sent'",
                handoff_id,
            )
            == SENIORS
        )

    await eventually(all_sent, WAIT_S, "the restarted worker to finish the fan-out", second.log)
    await settled(lambda: _count(smtp), quiet_s=1.5)

    assert smtp.count_by_recipient() == {f"{s.id.hex[:8]}@example.com": 1 for s in seniors}
    retried = await db.fetchval(
        "SELECT count(*) FROM deliveries WHERE handoff_id = $1 AND channel = 'email' AND attempts > 1",
        handoff_id,
    )
    assert retried >= 1  # the ones the killed worker held were claimed again


async def _count(smtp: FakeSmtp) -> int:
    return len(smtp.messages())
