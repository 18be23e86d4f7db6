"""A resolve's messages through a real worker: the returned technician's one e-mail, and
the outcome's one note on the PSA ticket beside the documentation's."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.api.conftest import API, Person, Tenant
from tests.conftest import BatonProcesses
from tests.fakes.psa import FakeConnectWise
from tests.fakes.smtp import FakeSmtp

from .conftest import connect_psa, escalation_session, eventually, settled, worker_env

WAIT_S = 40
PROBLEM = "Outlook cannot connect to Exchange after a password reset"  # DIAGNOSTIC_SESSION's


def _address(person: Person) -> str:
    return f"{person.id.hex[:8]}@example.com"


async def _resolve(acme: Tenant, by: Person, handoff_id: str, outcome: str, note: str) -> dict[str, Any]:
    response = await acme.client.post(
        f"{API}/handoffs/{handoff_id}/resolve", json={"outcome": outcome, "note": note}, headers=by.headers
    )
    assert response.status_code == 200, response.text
    resolved: dict[str, Any] = response.json()
    return resolved


async def test_a_returned_session_rings_its_technician_and_emails_them_the_note_once(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer", name="Sam Senior")
    handoff = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    assert (await acme.claim(senior, handoff["id"])).status_code == 200
    worker = baton.worker(env=worker_env(smtp.env()))

    await _resolve(acme, senior, handoff["id"], "returned", "Clear the credential cache, then call me")

    def to_tech() -> list[Any]:
        return [m for m in smtp.messages() if m.to == _address(tech)]

    async def returned_mail() -> int:
        return len(to_tech())

    await eventually(returned_mail, WAIT_S, "the returned e-mail", worker.log)
    await settled(returned_mail, quiet_s=1.5)
    [mail] = to_tech()
    assert mail.subject == f"Returned to you: {PROBLEM}"
    assert "Sam Senior returned this session to you" in mail.body
    assert "Note: Clear the credential cache, then call me" in mail.body
    assert "/pickup/" not in mail.body  # nothing to pick up: pick-up links are for escalations
    row = await db.fetchrow(
        "SELECT status, attempts FROM deliveries "
        "WHERE handoff_id = $1 AND purpose = 'outcome' AND channel = 'email'",
        uuid.UUID(handoff["id"]),
    )
    assert (row["status"], row["attempts"]) == ("sent", 1)
    [bell] = await db.fetch(
        "SELECT title, body FROM app_notifications WHERE user_id = $1 AND kind = 'session.returned'", tech.id
    )
    assert (bell["title"], bell["body"]) == (
        f"Sam Senior returned to you: {PROBLEM}",
        "Clear the credential cache, then call me",
    )
    # The escalation's own e-mails went to the seniors only, never to the technician.
    assert smtp.count_by_recipient()[_address(tech)] == 1


async def test_the_psa_ticket_gets_one_outcome_note_beside_the_documentation_even_after_a_failure(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, connectwise: FakeConnectWise
) -> None:
    tech = await acme.user(name="Tess Tech")
    owner = await acme.user("owner", name="Olga Owner")
    connection_id = await connect_psa(acme, connectwise)
    session_id = await escalation_session(
        acme, tech, psa_ticket_id="4242", psa_connection_id=str(connection_id)
    )
    handoff = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Needs a senior")
    worker = baton.worker(env=worker_env())

    async def documented() -> bool:
        return bool(
            await db.fetchval(
                "SELECT psa_note_pushed FROM session_handoffs WHERE id = $1", uuid.UUID(handoff["id"])
            )
        )

    await eventually(documented, WAIT_S, "the documentation note", worker.log)
    connectwise.fail_next(500)  # the outcome's first post: its retry looks before posting again

    await _resolve(acme, owner, handoff["id"], "resolved", "Rebuilt the Outlook profile")

    async def outcome_sent() -> bool:
        return bool(
            await db.fetchval(
                "SELECT status = 'sent' FROM deliveries "
                "WHERE handoff_id = $1 AND purpose = 'outcome' AND channel = 'psa'",
                uuid.UUID(handoff["id"]),
            )
        )

    await eventually(outcome_sent, WAIT_S, "the outcome note", worker.log)
    await settled(lambda: _count(connectwise))
    marker = f"Baton outcome of hand-off {handoff['id']}"
    documentation, outcome = connectwise.notes_on(4242)
    assert documentation.text.endswith(f"Baton hand-off {handoff['id']}")
    assert outcome.text.splitlines() == [
        f"Resolved: {PROBLEM}",
        "",
        "Outcome: resolved",
        "By: Olga Owner",
        "Note: Rebuilt the Outlook profile",
        "",
        marker,
    ]
    # The failed post, then the look (the documentation's note is not taken for it), then the note.
    assert len(connectwise.requests_to("POST", "/notes")) == 3
    assert len(connectwise.requests_to("GET", "/notes")) == 1
    row = await db.fetchrow(
        "SELECT recipient, attempts FROM deliveries WHERE handoff_id = $1 AND purpose = 'outcome'",
        uuid.UUID(handoff["id"]),
    )
    assert row["recipient"] == f"connectwise:{connection_id}:4242" and row["attempts"] == 2


async def _count(fake: FakeConnectWise) -> int:
    return len(fake.notes)


async def test_an_outcome_email_whose_message_was_lost_is_swept_to_its_own_job(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from actors.delivery_sweep import sweep_stuck_deliveries

    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer")
    handoff = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    assert (await acme.claim(senior, handoff["id"])).status_code == 200
    await _resolve(acme, senior, handoff["id"], "returned", "Over to you")

    # No worker ran: the outcome's e-mail row waits, pending, as if its message were lost.
    assert await sweep_stuck_deliveries(stuck_after_s=0.0) == 1

    jobs = await db.fetch(
        "SELECT actor_name, payload->>'handoff_id' AS handoff_id FROM outbox "
        "WHERE actor_name = 'send_outcome_email' ORDER BY created_at"
    )
    assert [(j["actor_name"], j["handoff_id"]) for j in jobs] == [("send_outcome_email", handoff["id"])] * 2
