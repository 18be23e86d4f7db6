"""One escalation, end to end: a real ``baton serve``, a real ``baton worker``, and the
outside world as local servers speaking its protocols."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import msgspec
import redis.asyncio

from tests.api.conftest import API, inbox_events, new_tenant, next_inbox_event
from tests.conftest import BatonProcesses
from tests.fakes.anthropic_api import GOOD_ASSESSMENT, FakeAnthropic
from tests.fakes.chat import FakeWebhooks
from tests.fakes.psa import FakeConnectWise
from tests.fakes.smtp import FakeSmtp

from .conftest import add_channel, connect_psa, escalation_session, eventually, settled, worker_env

WAIT_S = 45
# Production's send timeout, not FAST_WORKER_ENV's 2 s: this test counts attempts. A worker
# loop that a loaded machine stalls past 2 s times a webhook post out before it is even
# written (ConnectTimeout; the fake sees nothing), and the retry makes one message with
# attempts == 2, as CI saw once for Teams.
SEND_TIMEOUT_S = "10"


async def test_one_escalation_reaches_every_channel_once(
    baton: BatonProcesses,
    served_client: httpx.AsyncClient,
    db: asyncpg.Connection,
    inbox_redis: redis.asyncio.Redis,
    ai: FakeAnthropic,
    smtp: FakeSmtp,
    webhooks: FakeWebhooks,
    connectwise: FakeConnectWise,
) -> None:
    acme = await new_tenant(db, served_client, "Acme MSP")
    tech = await acme.user(name="Tess Tech")
    seniors = [await acme.user(role, name=f"Senior {role}") for role in ("engineer", "admin", "owner")]
    retired = await acme.user("engineer", name="Retired Engineer", active=False)
    other_tech = await acme.user(name="Other Tech")
    await add_channel(acme, "slack", webhooks.slack_url)
    await add_channel(acme, "teams", webhooks.teams_url)
    connection_id = await connect_psa(acme, connectwise, member_mapping={str(tech.id): "ttech"})
    session_id = await escalation_session(
        acme, tech, psa_ticket_id="4242", psa_connection_id=str(connection_id)
    )
    # Another account's senior hears nothing of it.
    globex = await new_tenant(db, served_client, "Globex")
    outsider = await globex.user("owner")

    worker = baton.worker(env=worker_env(ai.env(), smtp.env(), BATON_DELIVERY_TIMEOUT_S=SEND_TIMEOUT_S))
    created = await acme.handed_off(
        tech, session_id, "escalate", engineer_notes="User locked out", priority="high"
    )
    handoff_id = created["id"]
    created_id = uuid.UUID(handoff_id)

    # Saved, then announced: the inbox's event is the moment the assessment is there.
    ready = await next_inbox_event(
        inbox_redis, acme.account_id, "handoff_assessment_ready", WAIT_S, log=worker.log
    )
    assert ready == {
        "type": "handoff_assessment_ready",
        "handoff_id": handoff_id,
        "session_id": str(session_id),
        "has_assessment": True,
    }
    handoff = await db.fetchrow("SELECT * FROM session_handoffs WHERE id = $1", created_id)
    assert handoff["assessment_status"] == "ready"
    assert handoff["ai_assessment"] == GOOD_ASSESSMENT["summary_prose"]
    assert msgspec.json.decode(handoff["ai_assessment_data"])["confidence"] == "high"
    package = msgspec.json.decode(
        await db.fetchval("SELECT escalation_package FROM ai_sessions WHERE id = $1", session_id)
    )
    assert package["suggested_next_steps"] == GOOD_ASSESSMENT["suggested_steps"]
    assert package["handoff_id"] == handoff_id and package["intent"] == "escalate"  # kept

    # The PSA note waited for the assessment, and is attributed to the mapped member.
    await eventually(lambda: _true(connectwise.notes_on(4242)), WAIT_S, "the ConnectWise note", worker.log)
    [note] = connectwise.notes_on(4242)
    assert "Outlook cannot connect to Exchange" in note.text
    assert GOOD_ASSESSMENT["summary_prose"] in note.text
    assert "Checked OWA → OWA works" in note.text
    assert note.fields["internalAnalysisFlag"] is True and note.fields["member"] == {"identifier": "ttech"}

    async def emails_sent() -> int:
        return int(
            await db.fetchval(
                "SELECT count(*) FROM deliveries "
                "WHERE handoff_id = $1 AND channel = 'email' AND status = 'sent'",
                created_id,
            )
        )

    await eventually(lambda: _at_least(emails_sent, 3), WAIT_S, "three e-mails", worker.log)
    await eventually(lambda: _true(webhooks.slack and webhooks.teams), WAIT_S, "Slack and Teams", worker.log)
    await settled(lambda: _count_all(smtp, webhooks, connectwise))

    # One e-mail per eligible senior: not the creator, not the inactive one, not the outsider.
    assert smtp.count_by_recipient() == {f"{s.id.hex[:8]}@example.com": 1 for s in seniors}
    for sent in smtp.messages():
        assert sent.subject == "New escalation: Outlook cannot connect to Exchange after a password reset"
        assert "A teammate has escalated a session and is asking for help." in sent.body
        assert "Reason: User locked out" in sent.body and "Priority: high" in sent.body
        assert "https://app.example/escalations" in sent.body
    for nobody in (tech, retired, other_tech, outsider):
        assert f"{nobody.id.hex[:8]}@example.com" not in smtp.count_by_recipient()

    [slack] = webhooks.slack
    assert "#4242" in slack["text"] and "Tess Tech" in slack["text"]
    assert any(
        element.get("url") == "https://baton.example/inbox"
        for block in slack["blocks"]
        for element in block.get("elements", [])
    )
    [teams] = webhooks.teams
    # Each channel saw one post: none read twice, none cut off by a client that gave up.
    assert len(webhooks.requests_to("POST", webhooks.TEAMS_PATH)) == 1
    assert len(webhooks.requests_to("POST", webhooks.SLACK_PATH)) == 1
    assert webhooks.cut_off == []
    card = teams["attachments"][0]["content"]
    assert any("#4242" in str(item) for item in card["body"])
    assert card["actions"][0]["url"] == "https://baton.example/inbox"

    bells = await db.fetch("SELECT user_id, title FROM app_notifications WHERE handoff_id = $1", created_id)
    assert {b["user_id"] for b in bells} == {s.id for s in seniors}
    assert all("#4242" in b["title"] for b in bells)

    # The audit trail, as the API shows it.
    senior = seniors[0]
    response = await served_client.get(f"{API}/handoffs/{handoff_id}/deliveries", headers=senior.headers)
    assert response.status_code == 200, response.text
    by_channel: dict[str, list[str]] = {}
    for item in response.json()["items"]:
        assert item["status"] == "sent" and item["attempts"] == 1, (
            f"{item}; requests cut off at the fakes: {webhooks.cut_off + connectwise.cut_off}"
            f"\n--- worker log ---\n{worker.log()[-6000:]}"
        )
        by_channel.setdefault(item["channel"], []).append(item["recipient"])
    assert {channel: len(items) for channel, items in by_channel.items()} == {
        "bell": 3,
        "email": 3,
        "psa": 1,
        "slack": 1,
        "teams": 1,
    }
    shown = (await served_client.get(f"{API}/handoffs/{handoff_id}", headers=senior.headers)).json()
    assert shown["assessment"]["status"] == "ready" and shown["assessment"]["confidence"] == "high"
    assert shown["psa"] == {"pushed": True, "note_id": str(note.id)}

    # Claimed: the briefing is written for the claimer.
    assert (await acme.claim(senior, handoff_id)).status_code == 200

    await next_inbox_event(inbox_redis, acme.account_id, "handoff_briefing_ready", WAIT_S, log=worker.log)
    answer = await served_client.get(f"{API}/handoffs/{handoff_id}/briefing", headers=senior.headers)
    assert answer.status_code == 200, answer.text
    brief = answer.json()
    assert brief["status"] == "ready" and str(brief["briefing"]).startswith("Briefing:")

    types = [event["type"] for event in await inbox_events(inbox_redis, acme.account_id)]
    assert types == [
        "handoff_created",
        "handoff_assessment_ready",
        "handoff_claimed",
        "handoff_briefing_ready",
    ]
    assert len(ai.calls) == 2  # one assessment, one briefing


async def _true(value: object) -> bool:
    return bool(value)


async def _at_least(count: object, n: int) -> bool:
    return bool(await count() >= n)  # type: ignore[operator]


async def _count_all(
    smtp: FakeSmtp, webhooks: FakeWebhooks, psa: FakeConnectWise
) -> tuple[int, int, int, int]:
    return len(smtp.messages()), len(webhooks.slack), len(webhooks.teams), len(psa.notes)
