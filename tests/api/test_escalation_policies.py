"""``/api/v1/escalation-policies``: kept whole by PUT, read, listed and deleted by the host
app or an owner or admin; every bad shape refused naming its field, with nothing written;
another account's policy 404; one policy per team (SPEC second edition, "Escalation
policies and SLA")."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tables.queries.policies import policy_for
from tests.api.conftest import API, Tenant, TenantFactory, assert_problem, bearer, database_fingerprint

POLICIES = f"{API}/escalation-policies"
ANSWER_FIELDS = {
    "id",
    "name",
    "team_id",
    "tiers",
    "repeat",
    "sla_claim_s",
    "business_hours",
    "created_at",
    "updated_at",
}


def a_policy(**changes: Any) -> dict[str, Any]:
    """A valid body: tier 0 to the seniors at create, tier 1 to Slack five minutes on."""
    body: dict[str, Any] = {
        "name": "Service desk",
        "tiers": [
            {"after_s": 0, "channels": ["email", "bell"], "notify": {"roles": ["engineer", "admin"]}},
            {"after_s": 300, "channels": ["slack"], "raise_priority": True},
        ],
        "repeat": 1,
        "sla_claim_s": {"urgent": 900, "normal": 3600},
        "business_hours": {
            "timezone": "Europe/Berlin",
            "weekly": {"mon": [["08:00", "12:00"], ["13:00", "18:00"]], "fri": [["08:00", "24:00"]]},
            "holidays": ["2026-12-25"],
        },
    }
    body.update(changes)
    return body


async def put_policy(
    tenant: Tenant, policy_id: uuid.UUID, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await tenant.client.put(f"{POLICIES}/{policy_id}", json=body, headers=headers or tenant.host_app)


async def get_policy(tenant: Tenant, policy_id: uuid.UUID) -> httpx.Response:
    return await tenant.client.get(f"{POLICIES}/{policy_id}", headers=tenant.host_app)


async def listed(tenant: Tenant, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await tenant.client.get(POLICIES, headers=headers or tenant.host_app)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def created(tenant: Tenant, body: dict[str, Any], policy_id: uuid.UUID | None = None) -> dict[str, Any]:
    response = await put_policy(tenant, policy_id or uuid.uuid4(), body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def error_keys(problem: dict[str, Any]) -> list[str]:
    return [error.get("key") for error in problem.get("errors", [])]


# ---------------------------------------------------------------- create, read, replace, delete


async def test_put_creates_then_replaces_and_get_and_list_answer_what_was_put(tenant: TenantFactory) -> None:
    acme = await tenant()
    team_id = await acme.team("Network")
    policy_id = uuid.uuid4()

    first = await put_policy(acme, policy_id, a_policy(team_id=str(team_id)))

    assert first.status_code == 201, first.text
    answer = first.json()
    assert set(answer) == ANSWER_FIELDS
    assert answer["id"] == str(policy_id)
    assert answer["team_id"] == str(team_id)
    assert answer["name"] == "Service desk"
    assert [tier["after_s"] for tier in answer["tiers"]] == [0, 300]
    assert answer["tiers"][0]["channels"] == ["email", "bell"]
    assert answer["tiers"][0]["notify"]["roles"] == ["engineer", "admin"]
    assert answer["tiers"][1]["raise_priority"] is True
    assert answer["repeat"] == 1
    assert answer["sla_claim_s"] == {"urgent": 900, "high": None, "normal": 3600, "low": None}
    assert answer["business_hours"]["timezone"] == "Europe/Berlin"
    assert answer["business_hours"]["weekly"]["mon"] == [["08:00", "12:00"], ["13:00", "18:00"]]
    assert answer["business_hours"]["weekly"]["tue"] == []
    assert answer["business_hours"]["holidays"] == ["2026-12-25"]
    assert (await get_policy(acme, policy_id)).json() == answer

    replaced = await put_policy(
        acme, policy_id, a_policy(name="Nights", repeat=0, sla_claim_s=None, business_hours=None)
    )

    assert replaced.status_code == 200, replaced.text
    again = replaced.json()
    assert again["id"] == str(policy_id)
    assert again["team_id"] is None  # the whole policy is replaced: team_id left out is the default
    assert (again["name"], again["repeat"], again["sla_claim_s"], again["business_hours"]) == (
        "Nights",
        0,
        None,
        None,
    )
    assert again["created_at"] == answer["created_at"]
    assert again["updated_at"] > answer["updated_at"]
    assert (await get_policy(acme, policy_id)).json() == again
    assert await listed(acme) == [again]


async def test_the_list_is_the_accounts_own_by_name(tenant: TenantFactory) -> None:
    acme, globex = await tenant(), await tenant("Globex")
    zulu = await created(acme, a_policy(name="Zulu"))
    alpha = await created(acme, a_policy(name="Alpha", team_id=str(await acme.team())))
    await created(globex, a_policy(name="Globex's own"))

    assert [policy["id"] for policy in await listed(acme)] == [alpha["id"], zulu["id"]]
    assert [policy["name"] for policy in await listed(globex)] == ["Globex's own"]


async def test_delete_removes_the_policy_and_a_second_delete_is_404(tenant: TenantFactory) -> None:
    acme = await tenant()
    policy = await created(acme, a_policy())
    url = f"{POLICIES}/{policy['id']}"

    deleted = await acme.client.delete(url, headers=acme.host_app)

    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_problem(await acme.client.get(url, headers=acme.host_app), 404)
    assert_problem(await acme.client.delete(url, headers=acme.host_app), 404)
    assert await listed(acme) == []
    # The team's place is free again.
    await created(acme, a_policy(name="After"))


# ---------------------------------------------------------------- bad shapes


@dataclass(frozen=True)
class Shape:
    """A bad body, made from a valid one and the id of a user of the account."""

    change: Callable[[dict[str, Any], str], None]
    status: int
    key: str


def _tier(index: int, **fields: Any) -> Callable[[dict[str, Any], str], None]:
    def change(body: dict[str, Any], user_id: str) -> None:
        body["tiers"][index].update(fields)

    return change


def _hours(**fields: Any) -> Callable[[dict[str, Any], str], None]:
    def change(body: dict[str, Any], user_id: str) -> None:
        body["business_hours"].update(fields)

    return change


def _weekly(**days: Any) -> Callable[[dict[str, Any], str], None]:
    return _hours(weekly=days)


def _set(**fields: Any) -> Callable[[dict[str, Any], str], None]:
    def change(body: dict[str, Any], user_id: str) -> None:
        body.update(fields)

    return change


def _notify_users(*ids: str | None) -> Callable[[dict[str, Any], str], None]:
    """``None`` stands for the account's own user."""

    def change(body: dict[str, Any], user_id: str) -> None:
        body["tiers"][0]["notify"] = {"user_ids": [user_id if each is None else each for each in ids]}

    return change


def _tiers(count: int) -> Callable[[dict[str, Any], str], None]:
    def change(body: dict[str, Any], user_id: str) -> None:
        first, later = body["tiers"]
        body["tiers"] = [first, *[dict(later) for _ in range(count - 1)]]

    return change


UNKNOWN_USER = str(uuid.uuid4())

SHAPES: dict[str, Shape] = {
    # The rules of the policy itself: 422, naming the field.
    "tier 0 waits": Shape(_tier(0, after_s=60), 422, "tiers[0].after_s"),
    "a later tier does not wait": Shape(_tier(1, after_s=0), 422, "tiers[1].after_s"),
    "e-mail to nobody": Shape(_tier(0, notify={}), 422, "tiers[0].notify"),
    "bell to nobody": Shape(_tier(1, channels=["slack", "bell"]), 422, "tiers[1].notify"),
    "a channel twice": Shape(_tier(1, channels=["slack", "teams", "slack"]), 422, "tiers[1].channels[2]"),
    "a user twice": Shape(_notify_users(None, None), 422, "tiers[0].notify.user_ids[1]"),
    "a user who does not exist": Shape(_notify_users(None, UNKNOWN_USER), 422, "tiers[0].notify.user_ids[1]"),
    "a team that does not exist": Shape(_set(team_id=str(uuid.uuid4())), 422, "team_id"),
    "a tier's team that does not exist": Shape(
        _tier(1, notify={"team_id": str(uuid.uuid4())}), 422, "tiers[1].notify.team_id"
    ),
    "repeat with one tier": Shape(_tiers(1), 422, "repeat"),
    "an unknown time zone": Shape(_hours(timezone="Mars/Olympus_Mons"), 422, "business_hours.timezone"),
    "a window ending before it starts": Shape(
        _weekly(mon=[["18:00", "08:00"]]), 422, "business_hours.weekly.mon[0]"
    ),
    "an empty window": Shape(_weekly(tue=[["09:00", "09:00"]]), 422, "business_hours.weekly.tue[0]"),
    "a window starting at 24:00": Shape(
        _weekly(wed=[["24:00", "24:00"]]), 422, "business_hours.weekly.wed[0]"
    ),
    "overlapping windows": Shape(
        _weekly(thu=[["08:00", "12:00"], ["11:00", "18:00"]]), 422, "business_hours.weekly.thu[1]"
    ),
    "windows out of order": Shape(
        _weekly(fri=[["13:00", "18:00"], ["08:00", "12:00"]]), 422, "business_hours.weekly.fri[1]"
    ),
    "no open window in the week": Shape(_weekly(), 422, "business_hours.weekly"),
    "a holiday that is no date": Shape(_hours(holidays=["2026-02-30"]), 422, "business_hours.holidays[0]"),
    "a holiday twice": Shape(
        _hours(holidays=["2026-12-25", "2026-12-26", "2026-12-25"]), 422, "business_hours.holidays[2]"
    ),
    # What the types bound: 400 from decoding, naming the field the same way.
    "a negative wait": Shape(_tier(1, after_s=-5), 400, "tiers[1].after_s"),
    "a wait over a week": Shape(_tier(1, after_s=7 * 24 * 3600 + 1), 400, "tiers[1].after_s"),
    "an unknown channel": Shape(_tier(0, channels=["pager"]), 400, "tiers[0].channels[0]"),
    "no channel": Shape(_tier(1, channels=[]), 400, "tiers[1].channels"),
    "an unknown role": Shape(_tier(0, notify={"roles": ["intern"]}), 400, "tiers[0].notify.roles[0]"),
    "no tiers": Shape(_set(tiers=[]), 400, "tiers"),
    "eleven tiers": Shape(_tiers(11), 400, "tiers"),
    "repeat 4": Shape(_set(repeat=4), 400, "repeat"),
    "an SLA of 0 s": Shape(_set(sla_claim_s={"urgent": 0}), 400, "sla_claim_s.urgent"),
    "an unknown priority": Shape(_set(sla_claim_s={"asap": 60}), 400, "sla_claim_s"),
    "a time of 25:00": Shape(_weekly(mon=[["08:00", "25:00"]]), 400, "business_hours.weekly.mon[0][1]"),
    "an unknown day": Shape(_weekly(monday=[["08:00", "18:00"]]), 400, "business_hours.weekly"),
    "a holiday not YYYY-MM-DD": Shape(_hours(holidays=["25.12.2026"]), 400, "business_hours.holidays[0]"),
    "an unknown field": Shape(_set(colour="red"), 400, ""),
    "no name": Shape(_set(name=""), 400, "name"),
}


@pytest.mark.parametrize("case", SHAPES.values(), ids=SHAPES.keys())
async def test_a_bad_shape_is_refused_naming_the_field_and_nothing_is_written(
    case: Shape, tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    user = await acme.user("engineer")
    policy_id = uuid.uuid4()
    old = await created(acme, a_policy(), policy_id)
    body = copy.deepcopy(a_policy())
    case.change(body, str(user.id))
    before = await database_fingerprint(db)

    replacing = await put_policy(acme, policy_id, body)
    creating = await put_policy(acme, uuid.uuid4(), body)

    for response in (replacing, creating):
        problem = assert_problem(response, case.status)
        if case.key:
            assert case.key in error_keys(problem), problem
        if case.status == 422:
            assert problem["detail"].startswith(f"{case.key}: "), problem
    assert await database_fingerprint(db) == before
    assert (await get_policy(acme, policy_id)).json() == old


async def test_every_broken_rule_is_listed(tenant: TenantFactory) -> None:
    acme = await tenant()
    body = a_policy()
    body["tiers"][0]["after_s"] = 5
    body["business_hours"]["timezone"] = "Nowhere/Special"

    problem = assert_problem(await put_policy(acme, uuid.uuid4(), body), 422)

    assert error_keys(problem) == ["tiers[0].after_s", "business_hours.timezone"]
    assert "and 1 more" in problem["detail"]
    assert all(error["source"] == "body" for error in problem["errors"])


async def test_a_valid_policy_may_name_users_and_teams_of_its_account(tenant: TenantFactory) -> None:
    acme = await tenant()
    team_id = await acme.team()
    lead = await acme.user("engineer", team_id=team_id)
    body = a_policy(team_id=str(team_id))
    body["tiers"][0]["notify"] = {"user_ids": [str(lead.id)], "team_id": str(team_id), "roles": ["engineer"]}
    body["business_hours"]["weekly"] = {"sat": [["00:00", "24:00"]]}

    answer = await created(acme, body)

    assert answer["tiers"][0]["notify"] == {
        "roles": ["engineer"],
        "team_id": str(team_id),
        "user_ids": [str(lead.id)],
    }


async def test_a_team_or_user_of_another_account_is_422_and_nothing_is_written(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, globex = await tenant(), await tenant("Globex")
    their_team = await globex.team()
    their_user = await globex.user("engineer")
    before = await database_fingerprint(db)

    as_team = await put_policy(acme, uuid.uuid4(), a_policy(team_id=str(their_team)))
    body = a_policy()
    body["tiers"][1]["notify"] = {"team_id": str(their_team)}
    as_tier_team = await put_policy(acme, uuid.uuid4(), body)
    body = a_policy()
    body["tiers"][0]["notify"] = {"user_ids": [str(their_user.id)]}
    as_user = await put_policy(acme, uuid.uuid4(), body)

    assert error_keys(assert_problem(as_team, 422)) == ["team_id"]
    assert error_keys(assert_problem(as_tier_team, 422)) == ["tiers[1].notify.team_id"]
    assert error_keys(assert_problem(as_user, 422)) == ["tiers[0].notify.user_ids[0]"]
    assert await database_fingerprint(db) == before


# ---------------------------------------------------------------- accounts, callers


async def test_another_accounts_policy_is_404_to_get_put_and_delete(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, globex = await tenant(), await tenant("Globex")
    theirs = await created(acme, a_policy(name="Acme's"))
    owner = await globex.user("owner")
    url = f"{POLICIES}/{theirs['id']}"
    before = await database_fingerprint(db)

    for headers in (globex.host_app, owner.headers):
        assert_problem(await globex.client.get(url, headers=headers), 404)
        assert_problem(await globex.client.put(url, json=a_policy(name="Taken"), headers=headers), 404)
        assert_problem(await globex.client.delete(url, headers=headers), 404)

    assert await database_fingerprint(db) == before
    assert (await get_policy(acme, uuid.UUID(theirs["id"]))).json() == theirs
    assert await listed(globex) == []


async def test_an_engineer_or_technician_is_403_an_owner_or_admin_may(tenant: TenantFactory) -> None:
    acme = await tenant()
    engineer, technician = await acme.user("engineer"), await acme.user("technician")
    owner, admin = await acme.user("owner"), await acme.user("admin")
    policy = await created(acme, a_policy())
    url = f"{POLICIES}/{policy['id']}"

    for person in (engineer, technician):
        for response in (
            await acme.client.get(POLICIES, headers=person.headers),
            await acme.client.get(url, headers=person.headers),
            await acme.client.put(url, json=a_policy(name="Mine"), headers=person.headers),
            await acme.client.put(f"{POLICIES}/{uuid.uuid4()}", json=a_policy(), headers=person.headers),
            await acme.client.delete(url, headers=person.headers),
        ):
            assert_problem(response, 403)
    assert await listed(acme) == [policy]

    by_owner = await acme.client.put(url, json=a_policy(name="The owner's"), headers=owner.headers)
    assert by_owner.status_code == 200, by_owner.text
    assert [p["name"] for p in await listed(acme, admin.headers)] == ["The owner's"]
    team_policy = await acme.client.put(
        f"{POLICIES}/{uuid.uuid4()}", json=a_policy(team_id=str(await acme.team())), headers=admin.headers
    )
    assert team_policy.status_code == 201, team_policy.text
    deleted = await acme.client.delete(f"{POLICIES}/{team_policy.json()['id']}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer garbage", "Bearer ", "Basic dXNlcjpwYXNz"],
    ids=["missing", "garbage", "empty", "not bearer"],
)
async def test_no_valid_token_is_401(
    authorization: str | None, tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    policy = await created(acme, a_policy())
    headers = {} if authorization is None else {"Authorization": authorization}
    url = f"{POLICIES}/{policy['id']}"
    before = await database_fingerprint(db)

    for response in (
        await acme.client.get(POLICIES, headers=headers),
        await acme.client.get(url, headers=headers),
        await acme.client.put(f"{POLICIES}/{uuid.uuid4()}", json=a_policy(name="Other"), headers=headers),
        await acme.client.delete(url, headers=headers),
    ):
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert await database_fingerprint(db) == before


async def test_a_token_signed_with_another_secret_is_401(tenant: TenantFactory) -> None:
    from server.tokens import mint_service_token

    acme = await tenant()
    forged = bearer(mint_service_token("another-secret-" + "x" * 32, acme.account_id))

    assert_problem(await acme.client.get(POLICIES, headers=forged), 401)


# ---------------------------------------------------------------- one per team


async def test_a_second_policy_for_the_same_team_is_409_naming_the_first(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, globex = await tenant(), await tenant("Globex")
    network, desk = await acme.team("Network"), await acme.team("Desk")
    default = await created(acme, a_policy(name="Default"))
    for_network = await created(acme, a_policy(name="Network", team_id=str(network)))
    for_desk = await created(acme, a_policy(name="Desk", team_id=str(desk)))
    await created(globex, a_policy(name="Globex default"))  # another account's default is no conflict
    before = await database_fingerprint(db)

    second_default = await put_policy(acme, uuid.uuid4(), a_policy(name="Another default"))
    second_network = await put_policy(acme, uuid.uuid4(), a_policy(team_id=str(network)))
    desk_moved_to_network = await put_policy(
        acme, uuid.UUID(for_desk["id"]), a_policy(name="Desk", team_id=str(network))
    )

    assert assert_problem(second_default, 409)["existing_policy_id"] == default["id"]
    assert assert_problem(second_network, 409)["existing_policy_id"] == for_network["id"]
    problem = assert_problem(desk_moved_to_network, 409)
    assert problem["existing_policy_id"] == for_network["id"]
    assert for_network["id"] in problem["detail"]
    assert await database_fingerprint(db) == before

    # Its own team again is a replace, not a conflict.
    kept = await put_policy(acme, uuid.UUID(for_network["id"]), a_policy(name="Net", team_id=str(network)))
    assert kept.status_code == 200, kept.text


# ---------------------------------------------------------------- the engine's look-up


async def test_policy_for_is_the_teams_policy_else_the_accounts_default_else_none(
    tenant: TenantFactory,
) -> None:
    acme, globex = await tenant(), await tenant("Globex")
    network, desk = await acme.team("Network"), await acme.team("Desk")
    await created(globex, a_policy(name="Globex default"))

    assert await policy_for(account_id=acme.account_id, team_id=network) is None
    assert await policy_for(account_id=acme.account_id, team_id=None) is None

    for_network = await created(acme, a_policy(name="Network", team_id=str(network), repeat=0))
    assert await policy_for(account_id=acme.account_id, team_id=desk) is None
    network_copy = await policy_for(account_id=acme.account_id, team_id=network)
    assert network_copy is not None
    assert str(network_copy.id) == for_network["id"]
    assert network_copy.repeat == 0
    assert [tier.after_s for tier in network_copy.tiers] == [0, 300]
    assert network_copy.business_hours is not None
    assert network_copy.business_hours.timezone == "Europe/Berlin"
    assert network_copy.sla_claim_s is not None
    assert network_copy.sla_claim_s.for_priority("urgent") == 900

    default = await created(acme, a_policy(name="Default", sla_claim_s=None, business_hours=None))
    for team_id, expected in ((network, for_network), (desk, default), (None, default)):
        found = await policy_for(account_id=acme.account_id, team_id=team_id)
        assert found is not None and str(found.id) == expected["id"], team_id
    default_copy = await policy_for(account_id=acme.account_id, team_id=desk)
    assert default_copy is not None
    assert (default_copy.sla_claim_s, default_copy.business_hours) == (None, None)
