"""SPEC second edition, ``POST /handoffs/{id}/resolve``: every rule over HTTP.

``resolved`` and ``returned`` by the claimer, or an owner or admin (also while open);
``withdrawn`` by the technician who handed it off, while open. ``resolved`` is final.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio

from tests.api.conftest import (
    API,
    Person,
    Tenant,
    TenantFactory,
    assert_problem,
    database_fingerprint,
    inbox_events,
)

HOLDER_ONLY = "Only whoever claimed it, or an owner or admin, can resolve or return it."
CREATOR_ONLY = "Only the technician who handed it off can withdraw it."


async def resolve(acme: Tenant, by: Person, handoff_id: Any, outcome: str, **body: Any) -> httpx.Response:
    return await acme.client.post(
        f"{API}/handoffs/{handoff_id}/resolve", json={"outcome": outcome, **body}, headers=by.headers
    )


async def escalated(acme: Tenant, tech: Person, **session: Any) -> tuple[dict[str, Any], uuid.UUID]:
    session_id = await acme.session(tech, **session)
    return await acme.handed_off(tech, session_id, "escalate", engineer_notes="Out of ideas"), session_id


async def claimed(acme: Tenant, tech: Person, senior: Person) -> tuple[dict[str, Any], uuid.UUID]:
    handoff, session_id = await escalated(acme, tech)
    assert (await acme.claim(senior, handoff["id"])).status_code == 200
    return handoff, session_id


async def test_the_claimer_resolves_it_the_session_is_resolved_and_the_inbox_hears_it(
    tenant: TenantFactory, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer", name="Sam Senior")
    handoff, session_id = await claimed(acme, tech, senior)

    response = await resolve(acme, senior, handoff["id"], "resolved", note="Replaced the VPN client")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "resolved"
    resolution = body["resolution"]
    assert {k: v for k, v in resolution.items() if k != "at"} == {
        "outcome": "resolved",
        "note": "Replaced the VPN client",
        "by": {"id": str(senior.id), "name": "Sam Senior"},
    }
    assert datetime.fromisoformat(resolution["at"]) >= datetime.fromisoformat(body["claimed_at"])
    # Who held it is kept: the claim is history, not undone.
    assert body["claimed_by"] == {"id": str(senior.id), "name": "Sam Senior"}
    read = await acme.client.get(f"{API}/handoffs/{handoff['id']}", headers=tech.headers)
    assert read.json() == body
    assert (await acme.get_session(session_id))["status"] == "resolved"
    [event] = [e for e in await inbox_events(inbox_redis, acme.account_id) if e["type"] == "handoff_resolved"]
    assert {k: v for k, v in event.items() if k != "id"} == {
        "type": "handoff_resolved",
        "handoff_id": handoff["id"],
        "session_id": str(session_id),
        "outcome": "resolved",
        "resolved_by_id": str(senior.id),
        "resolved_by_name": "Sam Senior",
    }
    # Resolving tells nobody but the inbox: no bell, no e-mail, no PSA note job.
    jobs = await db.fetch(
        "SELECT actor_name FROM outbox WHERE payload->>'handoff_id' = $1 "
        "AND actor_name IN ('send_outcome_email', 'push_outcome_note')",
        handoff["id"],
    )
    assert jobs == []
    assert await db.fetchval("SELECT count(*) FROM app_notifications WHERE kind = 'session.returned'") == 0


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_an_owner_or_admin_resolves_an_open_handoff_nobody_claimed(
    tenant: TenantFactory, role: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    boss = await acme.user(role)
    handoff, session_id = await escalated(acme, tech)

    response = await resolve(acme, boss, handoff["id"], "resolved")

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "resolved"
    assert response.json()["resolution"]["by"]["id"] == str(boss.id)
    assert response.json()["resolution"]["note"] is None
    assert response.json()["claimed_by"] is None
    assert (await acme.get_session(session_id))["status"] == "resolved"


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_an_owner_or_admin_resolves_a_handoff_someone_else_claimed(
    tenant: TenantFactory, role: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    claimer = await acme.user("engineer")
    boss = await acme.user(role)
    handoff, _ = await claimed(acme, tech, claimer)

    response = await resolve(acme, boss, handoff["id"], "returned", note="Call the user back")

    assert response.status_code == 200, response.text
    assert response.json()["resolution"]["outcome"] == "returned"


@pytest.mark.parametrize("outcome", ["resolved", "returned"])
async def test_another_engineer_may_not_resolve_or_return_it(
    tenant: TenantFactory, db: asyncpg.Connection, outcome: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    claimer = await acme.user("engineer")
    other = await acme.user("engineer")
    handoff, _ = await claimed(acme, tech, claimer)
    unclaimed, _ = await escalated(acme, tech)
    before = await database_fingerprint(db)

    for handoff_id in (handoff["id"], unclaimed["id"]):
        body = assert_problem(await resolve(acme, other, handoff_id, outcome), 403)
        assert body["detail"] == HOLDER_ONLY
    # Nor does handing it off make it yours to resolve.
    assert assert_problem(await resolve(acme, tech, unclaimed["id"], outcome), 403)["detail"] == HOLDER_ONLY

    assert await database_fingerprint(db) == before


async def test_another_accounts_handoff_or_a_missing_one_is_not_found(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, other = await tenant(), await tenant("Other MSP")
    tech = await acme.user()
    handoff, _ = await escalated(acme, tech)
    their_owner = await other.user("owner")
    before = await database_fingerprint(db)

    for handoff_id in (handoff["id"], uuid.uuid4()):
        for outcome in ("resolved", "returned", "withdrawn"):
            body = assert_problem(await resolve(other, their_owner, handoff_id, outcome), 404)
            assert body["detail"] == "Hand-off not found."

    assert await database_fingerprint(db) == before


async def test_returned_gives_the_session_back_to_its_technician_with_a_bell_and_an_email_row(
    tenant: TenantFactory, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer", name="Sam Senior")
    handoff, session_id = await claimed(acme, tech, senior)

    response = await resolve(acme, senior, handoff["id"], "returned", note="  Reinstall the client first  ")

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "resolved"
    assert response.json()["resolution"]["outcome"] == "returned"
    assert response.json()["resolution"]["note"] == "Reinstall the client first"
    session = await acme.get_session(session_id)
    assert (session["status"], session["escalated_to_id"]) == ("active", str(tech.id))
    [bell] = await db.fetch(
        "SELECT user_id, kind, title, body, handoff_id FROM app_notifications WHERE kind = 'session.returned'"
    )
    assert bell["user_id"] == tech.id and bell["handoff_id"] == uuid.UUID(handoff["id"])
    assert bell["title"] == "Sam Senior returned to you: VPN drops every hour"
    assert bell["body"] == "Reinstall the client first"
    rows = await db.fetch(
        "SELECT channel, recipient, status FROM deliveries WHERE handoff_id = $1 AND purpose = 'outcome' "
        "ORDER BY channel",
        uuid.UUID(handoff["id"]),
    )
    assert [tuple(r) for r in rows] == [
        ("bell", str(tech.id), "sent"),
        ("email", f"{tech.id.hex[:8]}@example.com", "pending"),
    ]
    jobs = await db.fetch(
        "SELECT actor_name FROM outbox "
        "WHERE payload->>'handoff_id' = $1 AND actor_name = 'send_outcome_email'",
        handoff["id"],
    )
    assert len(jobs) == 1
    [event] = [e for e in await inbox_events(inbox_redis, acme.account_id) if e["type"] == "handoff_resolved"]
    assert event["outcome"] == "returned"


async def test_the_technician_withdraws_their_open_handoff_and_has_the_session_back(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user(name="Tess Tech")
    handoff, session_id = await escalated(acme, tech)

    response = await resolve(acme, tech, handoff["id"], "withdrawn", note="Fixed it myself")

    assert response.status_code == 200, response.text
    resolution = response.json()["resolution"]
    assert (resolution["outcome"], resolution["by"]["id"]) == ("withdrawn", str(tech.id))
    session = await acme.get_session(session_id)
    assert (session["status"], session["escalated_to_id"]) == ("active", str(tech.id))
    # Nobody is told: the technician did it themselves.
    assert await db.fetchval("SELECT count(*) FROM app_notifications WHERE kind = 'session.returned'") == 0


async def test_a_parked_session_withdrawn_is_active_again(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    park = await acme.handed_off(tech, session_id, "park")

    assert (await resolve(acme, tech, park["id"], "withdrawn")).status_code == 200

    assert (await acme.get_session(session_id))["status"] == "active"


async def test_a_claimed_handoff_cannot_be_withdrawn_and_nobody_else_may_withdraw_an_open_one(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    owner = await acme.user("owner")
    held, _ = await claimed(acme, tech, senior)
    still_open, _ = await escalated(acme, tech)
    before = await database_fingerprint(db)

    body = assert_problem(await resolve(acme, tech, held["id"], "withdrawn"), 409)
    assert body["detail"] == "Only an open hand-off can be withdrawn; this one is claimed."
    assert body["state"] == "claimed"
    for someone_else in (senior, owner):
        body = assert_problem(await resolve(acme, someone_else, still_open["id"], "withdrawn"), 403)
        assert body["detail"] == CREATOR_ONLY

    assert await database_fingerprint(db) == before


async def test_a_resolved_handoff_is_final_resolve_claim_and_release_are_refused(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    other = await acme.user("engineer")
    owner = await acme.user("owner")
    handoff, _ = await claimed(acme, tech, senior)
    never_claimed, _ = await escalated(acme, tech)
    assert (await resolve(acme, senior, handoff["id"], "resolved")).status_code == 200
    assert (await resolve(acme, owner, never_claimed["id"], "returned")).status_code == 200
    before = await database_fingerprint(db)

    for handoff_id in (handoff["id"], never_claimed["id"]):
        for outcome in ("resolved", "returned"):
            for who in (senior, owner):
                body = assert_problem(await resolve(acme, who, handoff_id, outcome), 409)
                assert (
                    body["detail"]
                    == f"This hand-off is resolved, which is final; it can no longer be {outcome}."
                )
        body = assert_problem(await resolve(acme, tech, handoff_id, "withdrawn"), 409)
        assert body["state"] == "resolved"
        # Its claimer too: a claim of it again is no idempotent repeat.
        for who in (senior, other, tech):
            body = assert_problem(await acme.claim(who, handoff_id), 409)
            assert body["detail"] == "This hand-off was resolved; it can no longer be claimed."
        for who in (senior, owner):
            body = assert_problem(await acme.release(who, handoff_id), 409)
            assert body["detail"] == "Only a claimed hand-off can be released; this one is resolved."

    assert await database_fingerprint(db) == before


async def test_a_session_with_a_newer_handoff_in_flight_is_left_to_that_one(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)
    park = await acme.handed_off(tech, session_id, "park")
    assert (await acme.claim(senior, park["id"])).status_code == 200
    # The claim made the session active again; it is escalated anew while the park is held.
    newer = await acme.handed_off(tech, session_id, "escalate")

    assert (await resolve(acme, senior, park["id"], "returned")).status_code == 200

    session = await acme.get_session(session_id)
    assert session["status"] == "escalated"
    state = await db.fetchval("SELECT state FROM session_handoffs WHERE id = $1", uuid.UUID(newer["id"]))
    assert state == "open"


async def test_a_note_of_4000_characters_is_kept_and_one_more_is_refused_naming_the_field(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    handoff, _ = await claimed(acme, tech, senior)
    before = await database_fingerprint(db)

    body = assert_problem(await resolve(acme, senior, handoff["id"], "returned", note="x" * 4001), 400)

    assert body["errors"][0]["key"] == "note"
    assert await database_fingerprint(db) == before
    kept = await resolve(acme, senior, handoff["id"], "returned", note="y" * 4000)
    assert kept.status_code == 200, kept.text
    assert kept.json()["resolution"]["note"] == "y" * 4000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "fixed"}, "outcome"),
        ({}, "outcome"),
        ({"outcome": "resolved", "note": 12}, "note"),
        ({"outcome": "resolved", "by": "me"}, "by"),
    ],
)
async def test_a_bad_body_is_400_naming_the_field_and_writes_nothing(
    tenant: TenantFactory, db: asyncpg.Connection, body: dict[str, Any], field: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    handoff, _ = await claimed(acme, tech, senior)
    before = await database_fingerprint(db)

    response = await acme.client.post(
        f"{API}/handoffs/{handoff['id']}/resolve", json=body, headers=senior.headers
    )

    [error] = assert_problem(response, 400)["errors"]
    # The field is the error's key, or (missing, unknown) named in its message.
    assert error["key"] == field or f"`{field}`" in error["message"], error
    assert await database_fingerprint(db) == before


async def test_only_an_escalation_whose_session_has_a_psa_ticket_gets_the_outcome_note_job(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    owner = await acme.user("owner")
    # The row alone (the worker test posts to a fake PSA): only the job is looked at here.
    connection_id = await db.fetchval(
        "INSERT INTO psa_connections (account_id, kind, base_url) "
        "VALUES ($1, 'connectwise', 'https://psa.example.com') RETURNING id",
        acme.account_id,
    )
    with_ticket, _ = await escalated(acme, tech, psa_ticket_id="4242", psa_connection_id=str(connection_id))
    without, _ = await escalated(acme, tech)
    park = await acme.handed_off(
        tech, await acme.session(tech, psa_ticket_id="4243", psa_connection_id=str(connection_id)), "park"
    )

    for handoff in (with_ticket, without, park):
        assert (await resolve(acme, owner, handoff["id"], "resolved")).status_code == 200

    jobs = await db.fetch(
        "SELECT payload->>'handoff_id' AS handoff_id FROM outbox WHERE actor_name = 'push_outcome_note'"
    )
    assert [job["handoff_id"] for job in jobs] == [with_ticket["id"]]
