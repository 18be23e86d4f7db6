"""An escalation nobody picks up re-notifies once and moves up a priority; a claimed one
stays quiet."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from tests.api.conftest import Tenant
from tests.conftest import BatonProcesses
from tests.fakes.smtp import FakeSmtp

from .conftest import escalation_session, eventually, settled, worker_env

WAIT_S = 40
REMIND_AFTER_S = "2"


async def test_an_escalation_left_open_is_reminded_once_and_raised_a_priority_step(
    baton: BatonProcesses,
    acme: Tenant,
    db: asyncpg.Connection,
    smtp: FakeSmtp,
    environment: Callable[..., None],
) -> None:
    # The web side computes when the reminder is due; the worker checks it.
    environment(BATON_REMIND_AFTER_S=REMIND_AFTER_S)
    tech = await acme.user(name="Tess Tech")
    seniors = [await acme.user("engineer"), await acme.user("admin")]
    left = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate", priority="normal")
    picked = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate", priority="low")
    assert (await acme.claim(seniors[0], picked["id"])).status_code == 200
    worker = baton.worker(env=worker_env(smtp.env(), BATON_REMIND_AFTER_S=REMIND_AFTER_S))

    async def reminded() -> asyncpg.Record | None:
        return await db.fetchrow(
            "SELECT priority, reminded_at FROM session_handoffs WHERE id = $1 AND reminded_at IS NOT NULL",
            uuid.UUID(left["id"]),
        )

    found = await eventually(reminded, WAIT_S, "the reminder", worker.log)
    assert found["priority"] == "high"

    async def reminder_mail() -> int:
        return sum(1 for m in smtp.messages() if m.subject.startswith("Still open:"))

    await eventually(lambda: _at_least(reminder_mail, 2), WAIT_S, "the reminder e-mails", worker.log)
    await settled(reminder_mail, quiet_s=1.5)
    reminders = [m for m in smtp.messages() if m.subject.startswith("Still open:")]
    assert sorted(m.to for m in reminders) == sorted(f"{s.id.hex[:8]}@example.com" for s in seniors)
    assert all("Its priority is now high." in m.body for m in reminders)
    bells = await db.fetch(
        "SELECT user_id FROM app_notifications "
        "WHERE kind = 'session.escalation_reminder' AND handoff_id = $1",
        uuid.UUID(left["id"]),
    )
    assert {b["user_id"] for b in bells} == {s.id for s in seniors}
    rows = await db.fetch(
        "SELECT recipient, status FROM deliveries WHERE handoff_id = $1 AND channel = 'reminder'",
        uuid.UUID(left["id"]),
    )
    assert len(rows) == 4 and {r["status"] for r in rows} == {"sent"}

    claimed = await db.fetchrow(
        "SELECT priority, reminded_at FROM session_handoffs WHERE id = $1", uuid.UUID(picked["id"])
    )
    assert claimed["priority"] == "low" and claimed["reminded_at"] is None


async def _at_least(count: Callable[[], object], n: int) -> bool:
    return bool(await count() >= n)  # type: ignore[misc,operator]
