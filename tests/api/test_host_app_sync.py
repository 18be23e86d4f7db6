"""The host app's PUTs: 201 created, 200 replaced; secrets kept and never shown."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from tests.api.conftest import API, TenantFactory, assert_problem


async def test_putting_a_user_creates_it_then_replaces_it(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    team_id = await acme.team()
    user_id = uuid.uuid4()
    body = {"email": "sam@example.com", "name": "Sam", "account_role": "engineer"}

    created = await acme.put(f"/users/{user_id}", body)
    replaced = await acme.put(
        f"/users/{user_id}", {**body, "name": "Sam Senior", "team_id": str(team_id), "is_active": False}
    )

    assert created.status_code == 201
    assert created.json()["is_active"] is True and created.json()["team_id"] is None
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "Sam Senior" and replaced.json()["team_id"] == str(team_id)
    row = await db.fetchrow("SELECT account_id, name, is_active FROM users WHERE id = $1", user_id)
    assert dict(row) == {"account_id": acme.account_id, "name": "Sam Senior", "is_active": False}


async def test_putting_a_team_creates_it_then_renames_it(tenant: TenantFactory) -> None:
    acme = await tenant()
    team_id = uuid.uuid4()

    created = await acme.put(f"/teams/{team_id}", {"name": "Desk"})
    renamed = await acme.put(f"/teams/{team_id}", {"name": "Service desk"})

    assert (created.status_code, renamed.status_code) == (201, 200)
    assert renamed.json()["name"] == "Service desk"


async def test_a_user_of_another_accounts_team_is_refused(tenant: TenantFactory) -> None:
    acme, other = await tenant(), await tenant("Other MSP")
    foreign_team = await other.team()

    response = await acme.put(
        f"/users/{uuid.uuid4()}",
        {"email": "x@example.com", "name": "X", "account_role": "engineer", "team_id": str(foreign_team)},
    )

    assert "team_id" in assert_problem(response, 422)["detail"]


async def test_a_channel_keeps_its_webhook_url_and_never_shows_it(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    channel_id = uuid.uuid4()
    # An IP literal the test session allows: a host name would be looked up in DNS.
    url = "https://127.0.0.1:9/services/T000/B000/secret-part"

    response = await acme.put(f"/channels/{channel_id}", {"kind": "slack", "url": url})

    assert response.status_code == 201
    assert "secret-part" not in response.text and "url" not in response.json()
    assert response.json()["enabled"] is True
    assert await db.fetchval("SELECT url FROM notification_channels WHERE id = $1", channel_id) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456",
        "https://webhook.office.com/webhookb2/abc",
    ],
)
async def test_a_retired_teams_connector_url_is_refused_with_directions_to_workflows(
    tenant: TenantFactory, db: asyncpg.Connection, url: str
) -> None:
    acme = await tenant()

    response = await acme.put(f"/channels/{uuid.uuid4()}", {"kind": "teams", "url": url})

    assert "Workflows webhook" in assert_problem(response, 422)["detail"]
    assert await db.fetchval("SELECT count(*) FROM notification_channels") == 0


async def test_a_teams_workflows_url_is_accepted(tenant: TenantFactory) -> None:
    acme = await tenant()
    url = "https://127.0.0.1:443/workflows/abc/triggers/manual/paths/invoke?sig=s"

    response = await acme.put(f"/channels/{uuid.uuid4()}", {"kind": "teams", "url": url, "enabled": False})

    assert response.status_code == 201 and response.json()["enabled"] is False


async def test_a_psa_connection_keeps_its_credentials_and_shows_only_their_names(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    connection_id = uuid.uuid4()
    credentials = {"company_id": "acme", "public_key": "pub", "private_key": "very-secret-key"}

    response = await acme.put(
        f"/psa-connections/{connection_id}",
        {
            "kind": "connectwise",
            "base_url": "https://127.0.0.1:9",
            "credentials": credentials,
            "member_mapping": {str(tech.id): "tess"},
        },
    )

    assert response.status_code == 201
    assert "very-secret-key" not in response.text
    assert response.json()["credential_fields"] == ["company_id", "private_key", "public_key"]
    assert response.json()["member_mapping"] == {str(tech.id): "tess"}
    stored = await db.fetchval("SELECT credentials::text FROM psa_connections WHERE id = $1", connection_id)
    assert json.loads(stored) == credentials


async def test_putting_a_session_stores_its_steps_branches_and_messages(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    branch = uuid.uuid4()
    steps = [
        {"step_order": 1, "content": {"text": "Cleared credentials"}, "selected_option": "Prompt came back"},
        {
            "step_order": 0,
            "content": {"text": "Checked licence"},
            "free_text_input": "Licensed",
            "was_skipped": False,
        },
        {"step_order": 2, "content": {"text": "Registry keys"}, "was_skipped": True},
    ]

    session_id = await acme.session(
        tech,
        steps=steps,
        is_branching=True,
        active_branch_id=str(branch),
        branches=[{"id": str(branch), "label": "Auth", "status": "open", "branch_order": 0}],
        conversation_messages=[{"role": "user", "content": "Started on Friday"}],
        psa_ticket_id="48213",
    )

    session = await acme.get_session(session_id)
    assert session["status"] == "active" and session["step_count"] == 3
    assert [step["content"]["text"] for step in session["steps"]] == [
        "Checked licence",
        "Cleared credentials",
        "Registry keys",
    ]
    assert session["steps"][2]["was_skipped"] is True
    assert session["branches"][0]["id"] == str(branch)
    assert session["conversation_messages"] == [{"role": "user", "content": "Started on Friday"}]
    assert session["psa_ticket_id"] == "48213"


async def test_putting_a_session_again_replaces_its_steps_and_keeps_batons_own_fields(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(
        tech, steps=[{"step_order": i, "content": {"text": f"step {i}"}} for i in range(4)]
    )
    await acme.handed_off(tech, session_id, "park", engineer_notes="Lunch")

    response = await acme.put(
        f"/sessions/{session_id}",
        {"user_id": str(tech.id), "steps": [{"step_order": 0, "content": {"text": "only step"}}]},
    )

    assert response.status_code == 200
    session = response.json()
    assert session["step_count"] == 1 and [s["content"]["text"] for s in session["steps"]] == ["only step"]
    # Baton's fields and status survive a host-app PUT that does not name a status.
    assert session["status"] == "paused" and session["handoff_count"] == 1
    assert session["escalation_package"]["engineer_notes"] == "Lunch"
    assert await db.fetchval("SELECT count(*) FROM session_steps WHERE session_id = $1", session_id) == 1


async def test_a_session_must_point_at_its_own_accounts_user_team_and_psa_connection(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, other = await tenant(), await tenant("Other MSP")
    tech = await acme.user()
    foreign_user = await other.user()
    foreign_team = await other.team()
    foreign_connection = uuid.uuid4()
    await other.put(
        f"/psa-connections/{foreign_connection}",
        {"kind": "halopsa", "base_url": "https://127.0.0.1:9", "credentials": {}},
    )

    for field, value in [
        ("user_id", foreign_user.id),
        ("team_id", foreign_team),
        ("psa_connection_id", foreign_connection),
    ]:
        body = {"user_id": str(tech.id), field: str(value)}
        response = await acme.put(f"/sessions/{uuid.uuid4()}", body)
        assert field in assert_problem(response, 422)["detail"]
    assert await db.fetchval("SELECT count(*) FROM ai_sessions") == 0


async def test_a_branch_id_can_belong_to_one_session_only(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    branch = {"id": str(uuid.uuid4()), "label": "A", "status": "open", "branch_order": 0}
    await acme.session(tech, branches=[branch])
    second = uuid.uuid4()

    response = await acme.put(
        f"/sessions/{second}",
        {
            "user_id": str(tech.id),
            "branches": [branch],
            "steps": [{"step_order": 0, "content": {"text": "x"}}],
        },
    )

    assert_problem(response, 422)
    assert await db.fetchval("SELECT count(*) FROM ai_sessions WHERE id = $1", second) == 0
    assert await db.fetchval("SELECT count(*) FROM session_steps WHERE session_id = $1", second) == 0


async def test_a_branch_listed_twice_is_refused(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    branch = {"id": str(uuid.uuid4()), "label": "A", "status": "open", "branch_order": 0}

    response = await acme.put(
        f"/sessions/{uuid.uuid4()}", {"user_id": str(tech.id), "branches": [branch, branch]}
    )

    assert_problem(response, 422)


async def test_a_user_may_read_a_session_of_their_account(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    response = await acme.client.get(f"{API}/sessions/{session_id}", headers=tech.headers)

    assert response.status_code == 200 and response.json()["id"] == str(session_id)
