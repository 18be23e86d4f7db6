"""Work whose message was lost in the broker is done after all, by the workers' sweep:
jobs sent and never done run again, and e-mails whose send never arrived go out, once
each."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.api.conftest import Person, new_tenant
from tests.conftest import BatonProcesses
from tests.fakes.smtp import FakeSmtp

from .conftest import escalation_session, eventually, settled, worker_env

WAIT_S = 40


async def _escalated(
    baton: BatonProcesses, db: asyncpg.Connection, seniors: int
) -> tuple[uuid.UUID, uuid.UUID, list[Person]]:
    """An escalation committed with no worker running: (account id, hand-off id, seniors)."""
    server = baton.serve()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http)
        tech = await acme.user(name="Tess Tech")
        people = [await acme.user("engineer") for _ in range(seniors)]
        created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    return acme.account_id, uuid.UUID(created["id"]), people


async def test_e_mails_left_pending_by_a_lost_message_are_sent_by_the_sweep_once_each(
    baton: BatonProcesses, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    account_id, handoff_id, seniors = await _escalated(baton, db, seniors=3)
    # As if the fan-out had run an hour ago and its batch message was then lost: the rows
    # wait, pending, and the fan-out job counts as sent.
    await db.execute(
        """
        INSERT INTO deliveries (id, account_id, handoff_id, channel, recipient, status, attempts,
                                created_at, updated_at)
        SELECT gen_random_uuid(), $1, $2, 'email', lower(u.email), 'pending', 0,
               now() - interval '1 hour', now() - interval '1 hour'
        FROM users AS u WHERE u.id = ANY($3::uuid[])
        """,
        account_id,
        handoff_id,
        [s.id for s in seniors],
    )
    await db.execute("UPDATE outbox SET sent_at = now() WHERE actor_name = 'send_escalation_emails'")

    worker = baton.worker(env=worker_env(smtp.env()))  # its relay sweeps when it starts

    async def all_sent() -> bool:
        return await db.fetchval(
            "SELECT bool_and(status = 'sent') AND count(*) = 3 FROM deliveries "
            "WHERE handoff_id = $1 AND channel = 'email'",
            handoff_id,
        )

    await eventually(all_sent, WAIT_S, "the swept e-mails", worker.log)
    await settled(lambda: _count(smtp))  # nothing more arrives
    assert smtp.count_by_recipient() == {f"{s.id.hex[:8]}@example.com": 1 for s in seniors}
    assert "left unsent (a lost message?)" in worker.log()


async def _count(smtp: FakeSmtp) -> int:
    return len(smtp.messages())


async def test_jobs_whose_messages_were_lost_are_sent_again_by_the_sweep_and_marked_done(
    baton: BatonProcesses, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    _, handoff_id, seniors = await _escalated(baton, db, seniors=2)
    # As if the relay had sent the jobs an hour ago and Redis had then lost the messages.
    await db.execute(
        "UPDATE outbox SET sent_at = now() - interval '1 hour', attempts = 1 "
        "WHERE actor_name NOT IN ('announce_events', 'remind_handoff')"
    )

    worker = baton.worker(env=worker_env(smtp.env()))  # its relay sweeps when it starts

    async def jobs_done() -> bool:
        return await db.fetchval(
            "SELECT bool_and(done_at IS NOT NULL) FROM outbox "
            "WHERE actor_name NOT IN ('announce_events', 'remind_handoff')"
        )

    await eventually(jobs_done, WAIT_S, "the lost jobs to be run again", worker.log)
    assessed = await db.fetchval("SELECT assessment_status FROM session_handoffs WHERE id = $1", handoff_id)
    assert assessed == "ready"
    await settled(lambda: _count(smtp))
    assert smtp.count_by_recipient() == {f"{s.id.hex[:8]}@example.com": 1 for s in seniors}
    assert "sent but never done (a lost message?)" in worker.log()
