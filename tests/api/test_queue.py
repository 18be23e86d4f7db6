"""``GET /queue``: open hand-offs, newest first, filtered, one keyset page at a time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import API, Person, Tenant, TenantFactory, assert_problem


async def queue(acme: Tenant, reader: Person, **params: Any) -> dict[str, Any]:
    response = await acme.client.get(f"{API}/queue", params=params, headers=reader.headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_the_queue_lists_open_handoffs_newest_first_with_their_sessions(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    older = await acme.handed_off(tech, await acme.session(tech, problem_summary="Old"), "park")
    newer = await acme.handed_off(
        tech,
        await acme.session(tech, problem_summary="New"),
        "escalate",
        engineer_notes="Help",
        priority="high",
    )

    page = await queue(acme, senior)

    assert [item["handoff_id"] for item in page["items"]] == [newer["id"], older["id"]]
    assert page["items"][0] == {
        "handoff_id": newer["id"],
        "session_id": newer["session_id"],
        "intent": "escalate",
        "problem_summary": "New",
        "problem_domain": "network",
        "priority": "high",
        "engineer_notes": "Help",
        "created_at": newer["created_at"],
        "claimed_by": None,
        "claimed_at": None,
        # No escalation policy: no SLA; tier 0 (the create's notification) went last.
        "sla": {
            "policy_id": None,
            "claim_due_at": None,
            "breached_at": None,
            "last_tier": {"tier": 0, "round": 1, "at": newer["created_at"]},
        },
    }
    assert page["items"][1]["sla"] is None  # a park has no policy clock
    assert page["next_cursor"] is None


async def test_claimed_and_superseded_handoffs_leave_the_queue_and_a_release_brings_one_back(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    parked_session = await acme.session(tech)
    await acme.handed_off(tech, parked_session, "park")
    escalation = await acme.handed_off(tech, parked_session, "escalate")
    claimed = await acme.handed_off(tech, await acme.session(tech), "escalate")
    await acme.claim(senior, claimed["id"])

    assert [item["handoff_id"] for item in (await queue(acme, senior))["items"]] == [escalation["id"]]

    await acme.release(senior, claimed["id"])
    assert {item["handoff_id"] for item in (await queue(acme, senior))["items"]} == {
        escalation["id"],
        claimed["id"],
    }


async def test_the_queue_filters_by_team_and_by_intent(tenant: TenantFactory) -> None:
    acme = await tenant()
    desk, projects = await acme.team("Desk"), await acme.team("Projects")
    tech = await acme.user()
    senior = await acme.user("engineer")
    desk_park = await acme.handed_off(tech, await acme.session(tech, team_id=str(desk)), "park")
    desk_escalation = await acme.handed_off(tech, await acme.session(tech, team_id=str(desk)), "escalate")
    await acme.handed_off(tech, await acme.session(tech, team_id=str(projects)), "escalate")

    by_team = await queue(acme, senior, team_id=str(desk))
    by_both = await queue(acme, senior, team_id=str(desk), intent="park")

    assert {item["handoff_id"] for item in by_team["items"]} == {desk_park["id"], desk_escalation["id"]}
    assert [item["handoff_id"] for item in by_both["items"]] == [desk_park["id"]]


async def test_following_next_cursor_walks_every_open_handoff_once(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    senior = await acme.user("engineer")
    created = [(await acme.handed_off(tech, await acme.session(tech), "park"))["id"] for _ in range(7)]

    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = await queue(acme, senior, **params)
        pages += 1
        seen += [item["handoff_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert pages == 3
    assert seen == list(reversed(created))


async def test_the_queue_shows_only_the_callers_account(tenant: TenantFactory) -> None:
    acme, other = await tenant(), await tenant("Other MSP")
    acme_tech, other_tech = await acme.user(), await other.user()
    await other.handed_off(other_tech, await other.session(other_tech), "escalate")

    assert (await queue(acme, acme_tech))["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"intent": "panic"},
        {"team_id": "not-a-uuid"},
        {"cursor": "!!not a cursor!!"},
        {"cursor": "x" * 201},
    ],
)
async def test_a_bad_queue_parameter_is_a_400(tenant: TenantFactory, params: dict[str, Any]) -> None:
    acme = await tenant()
    senior = await acme.user("engineer")

    response = await acme.client.get(f"{API}/queue", params=params, headers=senior.headers)

    assert_problem(response, 400)


async def test_a_limit_of_one_hundred_is_allowed(tenant: TenantFactory) -> None:
    acme = await tenant()
    senior = await acme.user("engineer")

    assert (await queue(acme, senior, limit=100))["items"] == []
