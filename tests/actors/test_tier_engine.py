"""The tier engine on a driven clock: which tier goes out when, to whom, on which
channels, exactly once; a claim stops it, a release restarts it, the SLA breaches once.

The engine runs in the test's process (``fire_due`` at instants the test names) over
the real Postgres the API wrote to; the messages' sending is the worker's, tested with
worker processes in test_tier_messages.py. Here the ledger rows and bell rows are what a
senior would get.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.api.conftest import Person, Tenant
from tests.fakes.chat import FakeWebhooks

from .conftest import add_channel, escalation_session, put_policy, tier


async def fire(at: datetime) -> int:
    from actors.tiers.engine import fire_due

    return await fire_due(at)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def tier_rows(db: asyncpg.Connection, handoff_id: str) -> list[tuple[int, int, int, str, str]]:
    rows = await db.fetch(
        "SELECT release_count, tier, round, channel, recipient FROM deliveries "
        "WHERE handoff_id = $1 AND purpose = 'tier' ORDER BY release_count, round, tier, channel, recipient",
        uuid.UUID(handoff_id),
    )
    return [(r["release_count"], r["tier"], r["round"], r["channel"], r["recipient"]) for r in rows]


def email(person: Person) -> str:
    return f"{person.id.hex[:8]}@example.com"


@pytest.fixture
async def desk(acme: Tenant) -> dict[str, Person]:
    return {
        "tech": await acme.user(name="Tess Tech"),
        "engineer": await acme.user("engineer", name="Eli Engineer"),
        "admin": await acme.user("admin", name="Ada Admin"),
        "owner": await acme.user("owner", name="Olu Owner"),
    }


async def test_each_tier_reaches_exactly_its_recipients_on_its_channels_once_then_one_more_round(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection, webhooks: FakeWebhooks
) -> None:
    slack = await add_channel(acme, "slack", webhooks.slack_url)
    await put_policy(
        acme,
        {
            "tiers": [
                tier(0, ["bell", "email"], roles=["engineer"]),
                tier(60, ["email", "bell"], roles=["admin"]),
                tier(120, ["slack", "bell"], user_ids=[str(desk["owner"].id)]),
            ],
            "repeat": 1,
        },
    )
    created = await acme.handed_off(desk["tech"], await escalation_session(acme, desk["tech"]), "escalate")
    hid, at = created["id"], parse(created["created_at"])
    assert created["sla"]["policy_id"] is not None

    # Tier 0 at create: the engineers, by bell and e-mail; nobody else, no chat.
    assert await fire(at) == 1
    eng, adm, own = desk["engineer"], desk["admin"], desk["owner"]
    tier_0 = [(0, 0, 1, "bell", f"bell:{eng.id}"), (0, 0, 1, "email", email(eng))]
    assert await tier_rows(db, hid) == tier_0
    # Nothing is due a second before tier 1, and firing again sends nothing twice.
    assert await fire(at + timedelta(seconds=59)) == 0
    assert await tier_rows(db, hid) == tier_0

    assert await fire(at + timedelta(seconds=60)) == 1
    tier_1 = [(0, 1, 1, "bell", f"bell:{adm.id}"), (0, 1, 1, "email", email(adm))]
    assert await fire(at + timedelta(seconds=180)) == 1
    tier_2 = [(0, 2, 1, "bell", f"bell:{own.id}"), (0, 2, 1, "slack", str(slack))]
    # Round 2 repeats tiers 1 and 2 (60 s and 120 s after the one before), then it stops.
    assert await fire(at + timedelta(seconds=240)) == 1
    assert await fire(at + timedelta(seconds=360)) == 1
    assert await fire(at + timedelta(days=30)) == 0
    round_2 = [(0, t, 2, ch, r) for (_, t, _, ch, r) in tier_1 + tier_2]
    assert sorted(await tier_rows(db, hid)) == sorted(tier_0 + tier_1 + tier_2 + round_2)

    # One bell per person and kind: round 2 rings the same bell again, unread on top.
    bells = await db.fetch(
        "SELECT user_id, kind, created_at FROM app_notifications WHERE handoff_id = $1", uuid.UUID(hid)
    )
    rung = {b["user_id"]: (b["kind"], b["created_at"]) for b in bells}
    assert set(rung) == {eng.id, adm.id, own.id}  # only the policy's: not every senior, not Tess
    assert rung[eng.id] == ("session.escalated", at)
    assert rung[adm.id] == ("session.escalation_reminder", at + timedelta(seconds=240))
    assert rung[own.id] == ("session.escalation_reminder", at + timedelta(seconds=360))

    answer = (await acme.client.get(f"/api/v1/handoffs/{hid}", headers=eng.headers)).json()
    assert answer["sla"]["last_tier"] == {
        "tier": 2,
        "round": 2,
        "at": (at + timedelta(seconds=360)).isoformat().replace("+00:00", "Z"),
    }
    # The audit trail names each tier's message.
    listed = (await acme.client.get(f"/api/v1/handoffs/{hid}/deliveries", headers=eng.headers)).json()[
        "items"
    ]
    owners_slack = [d for d in listed if d["channel"] == "slack"]
    assert [(d["purpose"], d["tier"], d["round"]) for d in owners_slack] == [("tier", 2, 1), ("tier", 2, 2)]
    events = await db.fetch(
        "SELECT payload FROM outbox WHERE account_id = $1 AND actor_name = 'announce_events' "
        "AND payload::text LIKE '%handoff_tier_notified%'",
        acme.account_id,
    )
    assert len(events) == 5  # one per tier fired


async def test_a_claim_stops_the_tiers_and_a_release_restarts_them_from_tier_1(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection
) -> None:
    await put_policy(
        acme,
        {"tiers": [tier(0, ["bell"], roles=["engineer"]), tier(60, ["email"], roles=["admin"])]},
    )
    created = await acme.handed_off(desk["tech"], await escalation_session(acme, desk["tech"]), "escalate")
    hid, at = created["id"], parse(created["created_at"])
    await fire(at)
    assert (await acme.claim(desk["engineer"], hid)).status_code == 200
    assert await fire(at + timedelta(seconds=600)) == 0  # claimed: tier 1 never goes out
    assert [row[1] for row in await tier_rows(db, hid)] == [0]

    released = (await acme.release(desk["engineer"], hid)).json()
    assert released["state"] == "open"
    released_at = await db.fetchval("SELECT updated_at FROM session_handoffs WHERE id = $1", uuid.UUID(hid))
    # Restarted from tier 1, its wait counted from the release.
    assert await fire(released_at + timedelta(seconds=59)) == 0
    assert await fire(released_at + timedelta(seconds=60)) == 1
    assert await tier_rows(db, hid) == [
        (0, 0, 1, "bell", f"bell:{desk['engineer'].id}"),
        (1, 1, 1, "email", email(desk["admin"])),
    ]


async def test_an_sla_breach_is_recorded_once_at_the_due_time(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection
) -> None:
    await put_policy(
        acme,
        {"tiers": [tier(0, ["bell"], roles=["engineer"])], "sla_claim_s": {"high": 90, "normal": 600}},
    )
    created = await acme.handed_off(
        desk["tech"], await escalation_session(acme, desk["tech"]), "escalate", priority="high"
    )
    hid, at = created["id"], parse(created["created_at"])
    due = parse(created["sla"]["claim_due_at"])
    assert due == at + timedelta(seconds=90)
    await fire(at + timedelta(seconds=89))
    assert (await acme.client.get(f"/api/v1/handoffs/{hid}", headers=desk["engineer"].headers)).json()["sla"][
        "breached_at"
    ] is None
    await fire(at + timedelta(seconds=95))
    await fire(at + timedelta(seconds=300))
    sla = (await acme.client.get(f"/api/v1/handoffs/{hid}", headers=desk["engineer"].headers)).json()["sla"]
    assert parse(sla["breached_at"]) == due  # the due time itself, not when it was noticed
    breaches = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE account_id = $1 AND payload::text LIKE '%handoff_sla_breached%'",
        acme.account_id,
    )
    assert breaches == 1
    queue = (await acme.client.get("/api/v1/queue?order=due", headers=desk["engineer"].headers)).json()
    assert queue["items"][0]["sla"]["breached_at"] == sla["breached_at"]


async def test_a_tier_waits_out_closed_days_in_business_hours(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection
) -> None:
    # Open all day every day, but today and the next two days are holidays: a tier 60 s
    # after a create today is due at 00:01 UTC on the third day from now.
    today = datetime.now(UTC).date()
    all_day = [["00:00", "24:00"]]
    await put_policy(
        acme,
        {
            "tiers": [tier(0, ["bell"], roles=["engineer"]), tier(60, ["bell"], roles=["admin"])],
            "sla_claim_s": {"normal": 120},
            "business_hours": {
                "timezone": "UTC",
                "weekly": {day: all_day for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                "holidays": [(today + timedelta(days=n)).isoformat() for n in range(3)],
            },
        },
    )
    created = await acme.handed_off(desk["tech"], await escalation_session(acme, desk["tech"]), "escalate")
    hid = created["id"]
    opens = datetime.combine(today + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    assert parse(created["sla"]["claim_due_at"]) == opens + timedelta(seconds=120)
    assert await fire(parse(created["created_at"])) == 1  # tier 0 fires at create, closed or not
    assert await fire(opens + timedelta(seconds=59)) == 0
    assert await fire(opens + timedelta(seconds=60)) == 1
    assert [row[1] for row in await tier_rows(db, hid)] == [0, 1]


async def test_a_target_replaces_tier_0s_recipients_and_the_creator_is_never_notified(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection
) -> None:
    await put_policy(acme, {"tiers": [tier(0, ["bell"], roles=["engineer", "admin", "technician"])]})
    created = await acme.handed_off(
        desk["tech"],
        await escalation_session(acme, desk["tech"]),
        "escalate",
        target_user_id=str(desk["owner"].id),
    )
    await fire(parse(created["created_at"]))
    assert await tier_rows(db, created["id"]) == [(0, 0, 1, "bell", f"bell:{desk['owner'].id}")]

    untargeted = await acme.handed_off(desk["tech"], await escalation_session(acme, desk["tech"]), "escalate")
    await fire(parse(untargeted["created_at"]))
    recipients = {row[4] for row in await tier_rows(db, untargeted["id"])}
    assert recipients == {f"bell:{desk['engineer'].id}", f"bell:{desk['admin'].id}"}  # not Tess, its creator


async def test_a_team_policy_wins_over_the_account_default(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection
) -> None:
    team = await acme.team("Network")
    await put_policy(acme, {"tiers": [tier(0, ["bell"], roles=["engineer"])]})
    team_policy = await put_policy(
        acme, {"team_id": str(team), "tiers": [tier(0, ["bell"], roles=["admin"])]}
    )
    on_team = await acme.handed_off(
        desk["tech"], await escalation_session(acme, desk["tech"], team_id=str(team)), "escalate"
    )
    assert on_team["sla"]["policy_id"] == str(team_policy)
    await fire(parse(on_team["created_at"]))
    assert [row[4] for row in await tier_rows(db, on_team["id"])] == [f"bell:{desk['admin'].id}"]


async def test_an_edited_policy_touches_only_what_comes_after(
    acme: Tenant, desk: dict[str, Person], db: asyncpg.Connection
) -> None:
    policy_id = await put_policy(
        acme, {"tiers": [tier(0, ["bell"], roles=["engineer"]), tier(60, ["bell"], roles=["admin"])]}
    )
    created = await acme.handed_off(desk["tech"], await escalation_session(acme, desk["tech"]), "escalate")
    at = parse(created["created_at"])
    await fire(at)
    # Edited after the create: the open hand-off keeps the copy it was created with.
    await put_policy(
        acme,
        {"tiers": [tier(0, ["bell"], roles=["engineer"]), tier(60, ["bell"], roles=["owner"])]},
        policy_id,
    )
    await fire(at + timedelta(seconds=60))
    assert [row[4] for row in await tier_rows(db, created["id"])][-1] == f"bell:{desk['admin'].id}"
    # A new escalation follows the edit.
    later = await acme.handed_off(desk["tech"], await escalation_session(acme, desk["tech"]), "escalate")
    await fire(parse(later["created_at"]))
    await fire(parse(later["created_at"]) + timedelta(seconds=60))
    assert [row[4] for row in await tier_rows(db, later["id"])][-1] == f"bell:{desk['owner'].id}"
