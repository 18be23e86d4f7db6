"""What one create writes: the hand-off, the session, the bell, the outbox, the inbox event,
all or nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio

from tables.delivery import OUTBOX_NOTIFY_CHANNEL
from tests.api.conftest import (
    API,
    TenantFactory,
    assert_problem,
    inbox_events,
    new_tenant,
    running_client,
    settings_with,
)
from tests.conftest import SessionServices

NOTIFY_WAIT_S = 5.0

HANDOFF_KEYS = {
    "id",
    "session_id",
    "intent",
    "state",
    "priority",
    "engineer_notes",
    "snapshot",
    "source_branch_id",
    "target_user_id",
    "handed_off_by",
    "claimed_by",
    "claimed_at",
    "created_at",
    "assessment",
    "psa",
    "sla",  # second edition: the policy clock (null on a park)
    "resolution",  # second edition: how it ended (null until resolved)
}


async def test_a_created_handoff_has_the_spec_shape_and_is_read_back_the_same(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer")
    session_id = await acme.session(tech)

    response = await acme.hand_off(
        tech, session_id, "escalate", engineer_notes="Tried it all", priority="high"
    )

    assert response.status_code == 201
    created = response.json()
    assert set(created) == HANDOFF_KEYS
    assert response.headers["location"] == f"{API}/handoffs/{created['id']}"
    assert created["handed_off_by"] == {"id": str(tech.id), "name": "Tess Tech"}
    assert created["priority"] == "high" and created["engineer_notes"] == "Tried it all"
    assert created["claimed_by"] is None and created["claimed_at"] is None
    assert created["assessment"]["status"] == "pending"
    assert created["psa"] == {"pushed": False, "note_id": None}
    assert created["resolution"] is None
    read = await acme.client.get(f"{API}/handoffs/{created['id']}", headers=senior.headers)
    assert read.status_code == 200
    assert read.json() == created


async def test_priority_defaults_to_normal_and_a_park_needs_no_assessment(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()

    created = await acme.handed_off(tech, await acme.session(tech), "park")

    assert created["priority"] == "normal"
    assert created["assessment"]["status"] == "not_applicable"


async def test_the_snapshot_holds_the_session_before_the_change(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    created = await acme.handed_off(tech, session_id, "escalate")

    assert created["snapshot"] == {
        "problem_summary": "VPN drops every hour",
        "problem_domain": "network",
        "status": "active",
        "step_count": 1,
        "confidence_tier": "medium",
    }


async def test_a_branching_sessions_snapshot_maps_its_branches_in_branch_order(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    root, child = uuid.uuid4(), uuid.uuid4()
    session_id = await acme.session(
        tech,
        is_branching=True,
        active_branch_id=str(child),
        branches=[
            {
                "id": str(child),
                "label": "DNS",
                "status": "exploring",
                "parent_branch_id": str(root),
                "branch_order": 1,
            },
            {
                "id": str(root),
                "label": "Network",
                "status": "dead_end",
                "status_reason": "Cables fine",
                "branch_order": 0,
            },
        ],
    )

    created = await acme.handed_off(tech, session_id, "park")

    assert created["snapshot"]["branch_map"] == [
        {
            "id": str(root),
            "label": "Network",
            "status": "dead_end",
            "status_reason": "Cables fine",
            "parent_branch_id": None,
        },
        {
            "id": str(child),
            "label": "DNS",
            "status": "exploring",
            "status_reason": None,
            "parent_branch_id": str(root),
        },
    ]
    assert created["snapshot"]["active_branch_id"] == str(child)
    assert created["source_branch_id"] == str(child)


async def test_the_session_records_the_handoff_in_its_escalation_package(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    created = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Need a senior")

    session = await acme.get_session(session_id)
    assert session["handoff_count"] == 1
    assert session["escalation_package"] == {
        "snapshot": created["snapshot"],
        "intent": "escalate",
        "engineer_notes": "Need a senior",
        "handoff_id": created["id"],
    }


async def test_the_handoff_belongs_to_the_sessions_team(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    team_id = await acme.team()
    tech = await acme.user(team_id=team_id)
    session_id = await acme.session(tech, team_id=str(team_id))

    created = await acme.handed_off(tech, session_id, "park")

    assert (
        await db.fetchval("SELECT team_id FROM session_handoffs WHERE id = $1", uuid.UUID(created["id"]))
        == team_id
    )


async def test_an_escalation_rings_every_eligible_senior_but_its_creator(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    creator = await acme.user("engineer", "Eve Engineer")
    owner, admin, engineer = await acme.user("owner"), await acme.user("admin"), await acme.user("engineer")
    await acme.user("technician")
    await acme.user("engineer", active=False)
    deleted = await acme.user("admin")
    await db.execute("UPDATE users SET deleted_at = now() WHERE id = $1", deleted.id)
    elsewhere = await tenant("Other MSP")
    await elsewhere.user("owner")
    session_id = await acme.session(creator, psa_ticket_id="48213")

    created = await acme.handed_off(creator, session_id, "escalate", engineer_notes="Printer on fire")

    rows = await db.fetch("SELECT user_id, kind, title, body, handoff_id, session_id FROM app_notifications")
    assert {row["user_id"] for row in rows} == {owner.id, admin.id, engineer.id}
    for row in rows:
        assert row["kind"] == "session.escalated"
        assert "48213" in row["title"] and "Eve Engineer" in row["title"]
        assert row["body"] == "Printer on fire"
        assert row["handoff_id"] == uuid.UUID(created["id"]) and row["session_id"] == session_id


async def test_a_targeted_escalation_rings_only_its_target(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    target = await acme.user("engineer")
    await acme.user("owner")

    await acme.handed_off(tech, await acme.session(tech), "escalate", target_user_id=str(target.id))

    assert [row["user_id"] for row in await db.fetch("SELECT user_id FROM app_notifications")] == [target.id]


async def test_an_escalation_hands_its_background_jobs_to_the_workers_through_the_outbox(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    woken = asyncio.Event()

    def relay_woken(*_: object) -> None:
        woken.set()

    # As the workers' outbox relays do (none runs here): the commit must wake them.
    await db.add_listener(OUTBOX_NOTIFY_CHANNEL, relay_woken)
    try:
        created = await acme.handed_off(tech, session_id, "escalate")
        await asyncio.wait_for(woken.wait(), timeout=NOTIFY_WAIT_S)
    finally:
        await db.remove_listener(OUTBOX_NOTIFY_CHANNEL, relay_woken)

    rows = await db.fetch(
        "SELECT account_id, actor_name, payload::text, sent_at FROM outbox "
        "WHERE actor_name <> 'announce_events'"
    )
    assert sorted(row["actor_name"] for row in rows) == [
        "assess_handoff",
        "notify_chat",
        "push_documentation",
        "remind_handoff",
        "send_escalation_emails",
    ]
    for row in rows:
        # Left for the relays: the web itself never waits on the broker.
        assert row["account_id"] == acme.account_id and row["sent_at"] is None
        assert json.loads(row["payload"]) == {"handoff_id": created["id"], "session_id": str(session_id)}


async def test_a_park_rings_no_bell_and_leaves_no_jobs(tenant: TenantFactory, db: asyncpg.Connection) -> None:
    acme = await tenant()
    tech = await acme.user()
    await acme.user("owner")

    await acme.handed_off(tech, await acme.session(tech), "park")

    assert await db.fetchval("SELECT count(*) FROM app_notifications") == 0
    # Only the inbox announcement's fallback (actors/announce.py), nothing for the workers to do.
    assert [r["actor_name"] for r in await db.fetch("SELECT actor_name FROM outbox")] == ["announce_events"]


async def test_the_inbox_hears_handoff_created(
    tenant: TenantFactory, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    created = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Help", priority="urgent")

    assert await inbox_events(inbox_redis, acme.account_id) == [
        {
            "type": "handoff_created",
            "handoff_id": created["id"],
            "session_id": str(session_id),
            "intent": "escalate",
            "priority": "urgent",
            "engineer_notes": "Help",
            "problem_summary": "VPN drops every hour",
            "created_at": created["created_at"],
        }
    ]


async def test_the_inbox_hears_the_park_superseded_then_the_escalation_created(
    tenant: TenantFactory, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    park = await acme.handed_off(tech, session_id, "park")

    escalation = await acme.handed_off(tech, session_id, "escalate")

    events = await inbox_events(inbox_redis, acme.account_id)
    assert [event["type"] for event in events] == ["handoff_created", "handoff_superseded", "handoff_created"]
    assert events[1] == {
        "type": "handoff_superseded",
        "handoff_id": park["id"],
        "session_id": str(session_id),
        "superseded_by": escalation["id"],
    }


async def test_a_refused_create_publishes_nothing(
    tenant: TenantFactory, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech, status="closed")

    assert_problem(await acme.hand_off(tech, session_id, "escalate"), 409)

    assert await inbox_events(inbox_redis, acme.account_id) == []


@pytest.fixture
async def failing_bell(db: asyncpg.Connection) -> AsyncIterator[None]:
    """A real database failure after the hand-off's insert: the bell insert raises."""
    await db.execute(
        """
        CREATE FUNCTION test_refuse_bell() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'bell is broken (test trigger)'; END $$;
        CREATE TRIGGER test_refuse_bell BEFORE INSERT ON app_notifications
        FOR EACH ROW EXECUTE FUNCTION test_refuse_bell();
        """
    )
    try:
        yield
    finally:
        await db.execute(
            "DROP TRIGGER test_refuse_bell ON app_notifications; DROP FUNCTION test_refuse_bell();"
        )


@pytest.mark.usefixtures("failing_bell")
async def test_a_create_that_fails_after_its_insert_leaves_nothing_behind_and_tells_nobody(
    tenant: TenantFactory, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis
) -> None:
    acme = await tenant()
    tech = await acme.user()
    await acme.user("owner")
    session_id = await acme.session(tech)

    response = await acme.hand_off(tech, session_id, "escalate", idempotency_key="rolled-back")

    assert_problem(response, 500)
    assert await db.fetchval("SELECT count(*) FROM session_handoffs") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    assert await db.fetchval("SELECT count(*) FROM app_notifications") == 0
    session = await acme.get_session(session_id)
    assert session["status"] == "active" and session["handoff_count"] == 0
    assert session["escalation_package"] is None
    assert await inbox_events(inbox_redis, acme.account_id) == []


async def test_a_create_still_lands_when_the_inbox_is_unreachable(
    services: SessionServices, db: asyncpg.Connection
) -> None:
    # Nothing listens on port 1: every publish fails at once.
    async for client in running_client(settings_with(redis_url="redis://127.0.0.1:1/0")):
        acme = await new_tenant(db, client)
        tech = await acme.user()
        session_id = await acme.session(tech)

        created = await acme.handed_off(tech, session_id, "escalate")

        assert (await acme.get_session(session_id))["status"] == "escalated"
        assert (
            await db.fetchval("SELECT count(*) FROM session_handoffs WHERE id = $1", uuid.UUID(created["id"]))
            == 1
        )
