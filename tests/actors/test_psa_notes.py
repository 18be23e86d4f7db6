"""The escalation's documentation lands on the PSA ticket once, whatever the PSA does."""

from __future__ import annotations

import uuid

import asyncpg

from tests.api.conftest import API, Tenant
from tests.conftest import BatonProcesses
from tests.fakes.psa import FakeAutotask, FakeConnectWise, FakeHaloPsa

from .conftest import connect_psa, escalation_session, eventually, settled, worker_env

WAIT_S = 30


async def _escalated_with_ticket(
    acme: Tenant, connection_id: uuid.UUID, ticket: str = "4242"
) -> tuple[uuid.UUID, uuid.UUID]:
    tech = acme.people[0]
    session_id = await escalation_session(
        acme, tech, psa_ticket_id=ticket, psa_connection_id=str(connection_id)
    )
    created = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Needs a senior")
    return uuid.UUID(created["id"]), session_id


async def test_a_psa_answering_500_then_200_gets_the_note_once(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, connectwise: FakeConnectWise
) -> None:
    await acme.user(name="Tess Tech")
    connectwise.fail_next(500)
    handoff_id, _ = await _escalated_with_ticket(acme, await connect_psa(acme, connectwise))
    worker = baton.worker(env=worker_env())

    async def pushed() -> asyncpg.Record | None:
        return await db.fetchrow(
            "SELECT psa_note_id, psa_push_status FROM session_handoffs WHERE id = $1 AND psa_note_pushed",
            handoff_id,
        )

    found = await eventually(pushed, WAIT_S, "the PSA note", worker.log)
    await settled(lambda: _len(connectwise.notes))
    [note] = connectwise.notes_on(4242)
    assert found["psa_note_id"] == str(note.id) and found["psa_push_status"] == "pushed"
    assert len(connectwise.requests_to("POST", "/notes")) == 2  # the 500, then the note
    delivery = await db.fetchrow(
        "SELECT * FROM deliveries WHERE handoff_id = $1 AND channel = 'psa'", handoff_id
    )
    assert delivery["status"] == "sent" and delivery["attempts"] == 2
    assert delivery["recipient"].endswith(":4242") and "priv" not in delivery["recipient"]
    # The retry's log line counts: which try of how many failed.
    assert (
        f"PSA note of hand-off {handoff_id}: 1 retry; try 1 of 11 failed, retrying with backoff"
        in worker.log()
    )


async def test_a_push_interrupted_after_the_psa_stored_the_note_adopts_it_instead_of_posting_again(
    acme: Tenant, db: asyncpg.Connection, connectwise: FakeConnectWise
) -> None:
    from actors.psa.push import push

    await acme.user(name="Tess Tech")
    handoff_id, _ = await _escalated_with_ticket(acme, await connect_psa(acme, connectwise))
    result, _, _ = await push(handoff_id)
    assert result.psa_push_status == "pushed"
    # What a worker killed between the PSA's answer and its own bookkeeping leaves behind.
    await db.execute(
        "UPDATE deliveries SET status = 'sending', updated_at = now() - interval '1 hour' "
        "WHERE handoff_id = $1 AND channel = 'psa'",
        handoff_id,
    )
    await db.execute(
        "UPDATE session_handoffs SET psa_note_pushed = false, psa_note_id = NULL WHERE id = $1", handoff_id
    )

    again, _, _ = await push(handoff_id)

    [note] = connectwise.notes_on(4242)
    assert again.psa_push_status == "pushed" and again.psa_note_id == str(note.id)
    assert len(connectwise.requests_to("GET", "/notes")) == 1  # it looked before posting
    delivery = await db.fetchrow(
        "SELECT status, attempts, last_error FROM deliveries WHERE handoff_id = $1", handoff_id
    )
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("sent", 2, None)


async def test_autotask_notes_use_the_tenants_picklist_values_and_impersonate_the_mapped_member(
    acme: Tenant, db: asyncpg.Connection, autotask: FakeAutotask
) -> None:
    from actors.psa.push import push

    tech = await acme.user(name="Tess Tech")
    connection_id = await connect_psa(acme, autotask, member_mapping={str(tech.id): "29683001"})
    handoff_id, _ = await _escalated_with_ticket(acme, connection_id, ticket="77")

    result, _, _ = await push(handoff_id)

    assert result.psa_push_status == "pushed" and result.member_mapping_warning is None
    [note] = autotask.notes_on(77)
    assert note.fields["noteType"] == 17 and note.fields["publish"] == 4  # read, not hard-coded
    assert note.fields["title"] == "Escalated: Outlook cannot connect to Exchange after a password reset"
    [posted] = autotask.requests_to("POST", "/Notes")
    assert posted.path == "/zone5/ATServicesRest/v1.0/Tickets/77/Notes"  # the zone it was told
    assert posted.headers["ImpersonationResourceId"] == "29683001"
    assert len(autotask.requests_to("GET", "/zoneInformation")) == 1


async def test_halopsa_gets_a_private_note_with_a_client_credentials_token_and_warns_of_an_unmapped_member(
    acme: Tenant, db: asyncpg.Connection, halopsa: FakeHaloPsa
) -> None:
    from actors.psa.push import push

    await acme.user(name="Tess Tech")
    handoff_id, _ = await _escalated_with_ticket(acme, await connect_psa(acme, halopsa), ticket="31337")

    result, _, _ = await push(handoff_id)

    assert result.psa_push_status == "pushed"
    assert result.member_mapping_warning == (
        "Tess Tech has no halopsa member mapped; the note is posted as the integration user."
    )
    [note] = halopsa.notes_on(31337)
    assert note.fields["outcome"] == "Private Note" and note.fields["hiddenfromuser"] is True
    assert "agent_id" not in note.fields
    assert halopsa.tokens_issued == 1
    stored = await db.fetchrow(
        "SELECT member_mapping_warning, psa_note_id FROM session_handoffs WHERE id = $1", handoff_id
    )
    assert stored["member_mapping_warning"] == result.member_mapping_warning
    assert stored["psa_note_id"] == str(note.id)


async def test_psa_push_reports_a_refusal_then_pushes_once_it_is_fixed_and_never_twice(
    acme: Tenant, db: asyncpg.Connection, connectwise: FakeConnectWise
) -> None:
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer")
    handoff_id, _ = await _escalated_with_ticket(acme, await connect_psa(acme, connectwise))
    connectwise.fail_next(404)

    refused = await acme.client.post(f"{API}/handoffs/{handoff_id}/psa-push", headers=senior.headers)

    assert refused.status_code == 200, refused.text
    assert refused.json()["psa_push_status"] == "failed"
    assert refused.json()["psa_push_error"].startswith("ConnectWise note: HTTP 404")
    assert connectwise.notes == []

    pushed = await acme.client.post(f"{API}/handoffs/{handoff_id}/psa-push", headers=tech.headers)
    again = await acme.client.post(f"{API}/handoffs/{handoff_id}/psa-push", headers=tech.headers)

    [note] = connectwise.notes
    assert pushed.json()["psa_push_status"] == "pushed" and pushed.json()["psa_note_id"] == str(note.id)
    assert again.json() == pushed.json()


async def test_the_legacy_escalate_shim_escalates_and_pushes_in_one_call(
    acme: Tenant, db: asyncpg.Connection, connectwise: FakeConnectWise
) -> None:
    tech = await acme.user(name="Tess Tech")
    connection_id = await connect_psa(acme, connectwise, member_mapping={str(tech.id): "ttech"})
    session_id = await escalation_session(
        acme, tech, psa_ticket_id="4242", psa_connection_id=str(connection_id)
    )

    response = await acme.client.post(
        f"{API}/sessions/{session_id}/escalate", json={"engineer_notes": "Locked out"}, headers=tech.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "handoff_id",
        "documentation",
        "psa_push_status",
        "psa_push_error",
        "member_mapping_warning",
    }
    assert body["psa_push_status"] == "pushed" and body["psa_push_error"] is None
    assert body["member_mapping_warning"] is None
    assert body["documentation"]["escalation_reason"] == "Locked out"
    assert body["documentation"]["steps"][0] == "Checked OWA → OWA works"
    [note] = connectwise.notes_on(4242)
    assert note.text == body["documentation"]["text"]
    handoff = await db.fetchrow(
        "SELECT intent, state FROM session_handoffs WHERE id = $1", uuid.UUID(body["handoff_id"])
    )
    assert (handoff["intent"], handoff["state"]) == ("escalate", "open")


async def test_the_shim_on_a_session_without_a_ticket_says_no_psa(acme: Tenant) -> None:
    tech = await acme.user(name="Tess Tech")
    session_id = await escalation_session(acme, tech)

    response = await acme.client.post(f"{API}/sessions/{session_id}/escalate", json={}, headers=tech.headers)

    assert response.status_code == 200, response.text
    assert response.json()["psa_push_status"] == "no_psa"
    assert response.json()["documentation"]["escalation_reason"] == "No reason provided."


async def _len(items: list[object]) -> int:
    return len(items)
