"""The briefing a claimer reads, and the bell a senior checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from tests.api.conftest import API, Tenant, new_tenant
from tests.fakes.anthropic_api import BRIEFING_TEXT, FakeAnthropic, status

from .conftest import escalation_session


async def test_a_claim_asks_for_the_briefing_and_it_is_served_once_written(
    acme: Tenant, db: asyncpg.Connection, ai: FakeAnthropic, environment: Callable[..., None]
) -> None:
    from actors.briefing import run

    environment(**ai.env())
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer")
    created = await acme.handed_off(
        tech, await escalation_session(acme, tech), "escalate", engineer_notes="Stuck"
    )
    assert (await acme.claim(senior, created["id"])).status_code == 200
    url = f"{API}/handoffs/{created['id']}/briefing"

    waiting = await acme.client.get(url, headers=senior.headers)
    assert waiting.status_code == 202 and waiting.json()["status"] == "pending"

    await run(uuid.UUID(created["id"]))  # what the worker's generate_briefing does
    ready = await acme.client.get(url, headers=senior.headers)

    assert ready.status_code == 200
    assert ready.json() == {
        "handoff_id": created["id"],
        "session_id": created["session_id"],
        "status": "ready",
        "briefing": BRIEFING_TEXT,
    }
    [call] = ai.calls
    assert "<handoff_data>" in call["messages"][0]["content"] and "Stuck" in call["messages"][0]["content"]
    await run(uuid.UUID(created["id"]))
    assert len(ai.calls) == 1  # written once, kept


async def test_a_briefing_read_before_any_claim_is_made_on_demand_offline_when_the_ai_fails(
    acme: Tenant, db: asyncpg.Connection, ai: FakeAnthropic, environment: Callable[..., None]
) -> None:
    from actors.briefing import run

    environment(**ai.env(), BATON_AI_MAX_RETRIES="0")
    ai.always(status(500))
    tech = await acme.user(name="Tess Tech")
    created = await acme.handed_off(
        tech, await escalation_session(acme, tech), "park", engineer_notes="Lunch"
    )
    url = f"{API}/handoffs/{created['id']}/briefing"

    asked = await acme.client.get(url, headers=tech.headers)
    assert asked.status_code == 202
    assert (
        await db.fetchval(
            "SELECT briefing_status FROM session_handoffs WHERE id = $1", uuid.UUID(created["id"])
        )
        == "pending"
    )

    await run(uuid.UUID(created["id"]))
    brief = (await acme.client.get(url, headers=tech.headers)).json()["briefing"]

    assert brief.startswith("(Offline briefing: the AI was unavailable)")
    assert "Tess Tech parked this session" in brief and "Notes: Lunch." in brief


async def test_another_accounts_briefing_is_not_found(acme: Tenant, db: asyncpg.Connection) -> None:
    tech = await acme.user(name="Tess Tech")
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    outsider = await (await new_tenant(db, acme.client, "Globex")).user("owner")

    response = await acme.client.get(f"{API}/handoffs/{created['id']}/briefing", headers=outsider.headers)

    assert response.status_code == 404


async def test_the_bell_lists_a_seniors_notifications_and_marks_them_read(acme: Tenant) -> None:
    tech = await acme.user(name="Tess Tech")
    senior, other = await acme.user("engineer"), await acme.user("owner")
    for _ in range(2):
        await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")

    first = await acme.client.get(f"{API}/notifications", params={"limit": 1}, headers=senior.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["unread_count"] == 2 and len(page["items"]) == 1 and page["next_cursor"]
    newest = page["items"][0]
    assert newest["kind"] == "session.escalated" and newest["title"].startswith("Tess Tech escalated")
    rest = await acme.client.get(
        f"{API}/notifications", params={"limit": 1, "cursor": page["next_cursor"]}, headers=senior.headers
    )
    [older] = rest.json()["items"]
    assert older["id"] != newest["id"] and rest.json()["next_cursor"] is None

    read = await acme.client.post(f"{API}/notifications/{newest['id']}/read", headers=senior.headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = await acme.client.post(f"{API}/notifications/{newest['id']}/read", headers=senior.headers)
    assert again.json()["read_at"] == read.json()["read_at"]  # idempotent
    unread = await acme.client.get(
        f"{API}/notifications", params={"unread_only": "true"}, headers=senior.headers
    )
    assert [n["id"] for n in unread.json()["items"]] == [older["id"]] and unread.json()["unread_count"] == 1

    # Someone else's notification is not theirs to read: as if it did not exist.
    stolen = await acme.client.post(f"{API}/notifications/{older['id']}/read", headers=other.headers)
    assert stolen.status_code == 404
    bad = await acme.client.get(
        f"{API}/notifications", params={"cursor": "nonsense!"}, headers=senior.headers
    )
    assert bad.status_code == 400
