"""SPEC "Session and hand-off states", one rule per test, over HTTP."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.api.conftest import TenantFactory, assert_problem


async def test_parking_an_active_session_pauses_it(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    handoff = await acme.handed_off(tech, session_id, "park", engineer_notes="Back after lunch")

    assert handoff["intent"] == "park" and handoff["state"] == "open"
    assert (await acme.get_session(session_id))["status"] == "paused"


async def test_escalating_an_active_session_escalates_it(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    handoff = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Out of ideas")

    assert handoff["intent"] == "escalate" and handoff["state"] == "open"
    session = await acme.get_session(session_id)
    assert session["status"] == "escalated"
    assert session["escalation_reason"] == "Out of ideas"


async def test_escalating_a_parked_session_supersedes_its_park_handoff(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    park = await acme.handed_off(tech, session_id, "park")

    escalation = await acme.handed_off(tech, session_id, "escalate")

    states = dict(await db.fetch("SELECT id, state FROM session_handoffs"))
    assert states == {uuid.UUID(park["id"]): "superseded", uuid.UUID(escalation["id"]): "open"}
    assert escalation["snapshot"]["status"] == "paused"
    assert (await acme.get_session(session_id))["status"] == "escalated"


@pytest.mark.parametrize("status", ["escalated", "resolved", "closed"])
async def test_escalating_is_refused_unless_the_session_is_active_or_paused(
    tenant: TenantFactory, status: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech, status=status)

    body = assert_problem(await acme.hand_off(tech, session_id, "escalate"), 409)

    assert body["detail"] == f"Cannot escalate session in status: {status}"
    assert (await acme.get_session(session_id))["status"] == status


@pytest.mark.parametrize("status", ["paused", "escalated", "resolved", "closed"])
async def test_parking_is_refused_unless_the_session_is_active(tenant: TenantFactory, status: str) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech, status=status)

    body = assert_problem(await acme.hand_off(tech, session_id, "park"), 409)

    assert body["detail"] == f"Cannot park session in status: {status}"
    assert (await acme.get_session(session_id))["status"] == status


async def test_escalating_a_session_to_yourself_is_refused_with_a_hint_to_pause(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    senior = await acme.user("engineer")
    session_id = await acme.session(senior)

    response = await acme.hand_off(senior, session_id, "escalate", target_user_id=str(senior.id))

    body = assert_problem(response, 422)
    assert body["detail"] == "Cannot escalate a session to yourself. Use pause instead."
    assert (await acme.get_session(session_id))["status"] == "active"


@pytest.mark.parametrize("who", ["inactive", "deleted", "another account's", "unknown"])
async def test_a_target_must_be_an_eligible_user_of_the_same_account(
    tenant: TenantFactory, db: asyncpg.Connection, who: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    if who == "inactive":
        target_id = (await acme.user("engineer", active=False)).id
    elif who == "deleted":
        target_id = (await acme.user("engineer")).id
        await db.execute("UPDATE users SET deleted_at = now() WHERE id = $1", target_id)
    elif who == "another account's":
        other = await tenant("Other MSP")
        target_id = (await other.user("engineer")).id
    else:
        target_id = uuid.uuid4()

    response = await acme.hand_off(tech, session_id, "escalate", target_user_id=str(target_id))

    assert "target_user_id" in assert_problem(response, 422)["detail"]
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 0


async def test_an_escalation_may_target_an_eligible_colleague(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)

    handoff = await acme.handed_off(tech, session_id, "escalate", target_user_id=str(senior.id))

    assert handoff["target_user_id"] == str(senior.id)
    assert (await acme.get_session(session_id))["escalated_to_id"] == str(senior.id)


async def test_a_session_with_an_open_handoff_refuses_another_naming_the_open_one(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    first = await acme.handed_off(tech, session_id, "escalate")
    # The host app sets the session back to active while the escalation is still open.
    await acme.put(f"/sessions/{session_id}", {"user_id": str(tech.id), "status": "active"})

    body = assert_problem(await acme.hand_off(tech, session_id, "park"), 409)

    assert body["open_handoff_id"] == first["id"]


async def test_a_refused_escalation_of_an_escalated_session_names_its_open_handoff(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    first = await acme.handed_off(tech, session_id, "escalate")

    body = assert_problem(await acme.hand_off(tech, session_id, "escalate"), 409)

    assert body["detail"] == "Cannot escalate session in status: escalated"
    assert body["open_handoff_id"] == first["id"]


async def test_claiming_an_escalation_makes_the_session_active_and_the_claimer_its_escalated_to(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer", "Sam Senior")
    session_id = await acme.session(tech)
    handoff = await acme.handed_off(tech, session_id, "escalate")

    response = await acme.claim(senior, handoff["id"])

    assert response.status_code == 200, response.text
    claimed = response.json()
    assert claimed["state"] == "claimed"
    assert claimed["claimed_by"] == {"id": str(senior.id), "name": "Sam Senior"}
    assert claimed["claimed_at"]
    session = await acme.get_session(session_id)
    assert session["status"] == "active"
    assert session["escalated_to_id"] == str(senior.id)


async def test_claiming_a_parked_session_makes_it_active(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    teammate = await acme.user()
    session_id = await acme.session(tech)
    handoff = await acme.handed_off(tech, session_id, "park")

    assert (await acme.claim(teammate, handoff["id"])).status_code == 200

    assert (await acme.get_session(session_id))["status"] == "active"


async def test_the_creator_cannot_claim_their_own_handoff(tenant: TenantFactory) -> None:
    acme = await tenant()
    senior = await acme.user("engineer")
    session_id = await acme.session(senior)
    handoff = await acme.handed_off(senior, session_id, "park")

    body = assert_problem(await acme.claim(senior, handoff["id"]), 403)

    assert body["detail"] == "Cannot claim your own handoff"
    assert (await acme.get_session(session_id))["status"] == "paused"


async def test_a_second_claimer_is_told_who_won_and_when(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    winner = await acme.user("engineer", "Wendy Winner")
    loser = await acme.user("admin")
    handoff = await acme.handed_off(tech, await acme.session(tech), "escalate")
    won = (await acme.claim(winner, handoff["id"])).json()

    body = assert_problem(await acme.claim(loser, handoff["id"]), 409)

    assert body["detail"] == "Already claimed by Wendy Winner"
    assert body["claimed_by_id"] == str(winner.id)
    assert body["claimed_by_name"] == "Wendy Winner"
    assert body["claimed_at"] == won["claimed_at"]


async def test_claiming_again_by_the_winner_answers_200_and_changes_nothing(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    handoff = await acme.handed_off(tech, await acme.session(tech), "escalate")
    first = (await acme.claim(senior, handoff["id"])).json()

    again = await acme.claim(senior, handoff["id"])

    assert again.status_code == 200
    assert again.json() == first


async def test_a_superseded_handoff_cannot_be_claimed(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)
    park = await acme.handed_off(tech, session_id, "park")
    await acme.handed_off(tech, session_id, "escalate")

    body = assert_problem(await acme.claim(senior, park["id"]), 409)

    assert "superseded" in body["detail"]


async def test_releasing_reopens_the_handoff_and_restores_the_session_status(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    target = await acme.user("engineer")
    session_id = await acme.session(tech)
    handoff = await acme.handed_off(tech, session_id, "escalate", target_user_id=str(target.id))
    await acme.claim(senior, handoff["id"])

    response = await acme.release(senior, handoff["id"])

    assert response.status_code == 200, response.text
    released = response.json()
    assert released["state"] == "open"
    assert released["claimed_by"] is None and released["claimed_at"] is None
    session = await acme.get_session(session_id)
    assert session["status"] == "escalated"
    assert session["escalated_to_id"] == str(target.id)


async def test_a_released_handoff_can_be_claimed_by_someone_else(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    first, second = await acme.user("engineer"), await acme.user("engineer")
    handoff = await acme.handed_off(tech, await acme.session(tech), "park")
    await acme.claim(first, handoff["id"])
    await acme.release(first, handoff["id"])

    response = await acme.claim(second, handoff["id"])

    assert response.status_code == 200
    assert response.json()["claimed_by"]["id"] == str(second.id)


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_an_owner_or_admin_may_release_a_handoff_someone_else_claimed(
    tenant: TenantFactory, role: str
) -> None:
    acme = await tenant()
    tech = await acme.user()
    claimer = await acme.user("engineer")
    boss = await acme.user(role)
    session_id = await acme.session(tech)
    handoff = await acme.handed_off(tech, session_id, "park")
    await acme.claim(claimer, handoff["id"])

    assert (await acme.release(boss, handoff["id"])).status_code == 200

    assert (await acme.get_session(session_id))["status"] == "paused"


@pytest.mark.parametrize("role", ["engineer", "technician"])
async def test_nobody_else_may_release_a_claimed_handoff(tenant: TenantFactory, role: str) -> None:
    acme = await tenant()
    tech = await acme.user()
    claimer = await acme.user("engineer")
    bystander = await acme.user(role)
    session_id = await acme.session(tech)
    handoff = await acme.handed_off(tech, session_id, "escalate")
    await acme.claim(claimer, handoff["id"])

    assert_problem(await acme.release(bystander, handoff["id"]), 403)

    assert (await acme.get_session(session_id))["status"] == "active"


async def test_an_open_handoff_cannot_be_released(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    admin = await acme.user("admin")
    handoff = await acme.handed_off(tech, await acme.session(tech), "escalate")

    assert_problem(await acme.release(admin, handoff["id"]), 409)


async def test_a_claimed_session_can_be_handed_off_again(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)
    first = await acme.handed_off(tech, session_id, "escalate")
    await acme.claim(senior, first["id"])

    again = await acme.handed_off(senior, session_id, "park", engineer_notes="Waiting on the vendor")

    assert again["state"] == "open"
    session = await acme.get_session(session_id)
    assert session["status"] == "paused"
    assert session["handoff_count"] == 2


async def test_a_release_is_refused_while_a_newer_handoff_of_the_session_is_open(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)
    first = await acme.handed_off(tech, session_id, "escalate")
    await acme.claim(senior, first["id"])
    newer = await acme.handed_off(senior, session_id, "park")

    body = assert_problem(await acme.release(senior, first["id"]), 409)

    assert body["open_handoff_id"] == newer["id"]
