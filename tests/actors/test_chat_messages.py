"""Slack and Teams: the message each webhook expects, naming the ticket, linking the inbox;
a failing webhook never holds up the other."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from tests.api.conftest import Tenant
from tests.fakes.chat import FakeWebhooks

from .conftest import add_channel, escalation_session


async def _escalate(acme: Tenant, **session: str) -> uuid.UUID:
    tech = await acme.user(name="Tess Tech")
    session_id = await escalation_session(acme, tech, **session)
    created = await acme.handed_off(
        tech, session_id, "escalate", engineer_notes="Ping <!channel> & <@U123>", priority="urgent"
    )
    return uuid.UUID(created["id"])


async def test_slack_and_teams_each_get_one_message_naming_the_ticket_and_linking_the_inbox(
    acme: Tenant, db: asyncpg.Connection, webhooks: FakeWebhooks, environment: Callable[..., None]
) -> None:
    from actors.chat import notify
    from actors.deliveries import Outcome

    environment(BATON_PUBLIC_URL="https://baton.example/")
    await add_channel(acme, "slack", webhooks.slack_url)
    await add_channel(acme, "teams", webhooks.teams_url)
    handoff_id = await _escalate(acme, psa_ticket_id="4242")

    assert await notify(handoff_id) == [Outcome.SENT, Outcome.SENT]
    assert await notify(handoff_id) == [Outcome.ALREADY_SENT, Outcome.ALREADY_SENT]

    [slack] = webhooks.slack
    assert slack["text"] == (
        "New escalation: Tess Tech escalated ticket #4242: "
        "Outlook cannot connect to Exchange after a password reset"
    )
    fields = [field["text"] for field in slack["blocks"][2]["fields"]]
    # Users' text is plain text, and cannot ping the channel or a user: Slack's control
    # characters escaped.
    assert {field["type"] for field in slack["blocks"][2]["fields"]} == {"plain_text"}
    assert fields == [
        "Reason: Ping &lt;!channel&gt; &amp; &lt;@U123&gt;",
        "Priority: urgent",
        "PSA ticket: #4242",
    ]
    assert slack["blocks"][3]["elements"][0]["url"] == "https://baton.example/inbox"
    [teams] = webhooks.teams
    card = teams["attachments"][0]["content"]
    facts = {
        block["inlines"][0]["text"]: block["inlines"][1]["text"]
        for block in card["body"][2:]
        if block["type"] == "RichTextBlock"
    }
    assert facts == {"Reason: ": "Ping <!channel> & <@U123>", "Priority: ": "urgent", "PSA ticket: ": "#4242"}
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the inbox", "url": "https://baton.example/inbox"}
    ]


async def test_a_failing_teams_webhook_never_holds_up_slack_and_a_flaky_slack_is_retried(
    acme: Tenant, db: asyncpg.Connection, webhooks: FakeWebhooks
) -> None:
    from actors.chat import notify
    from actors.deliveries import Outcome

    await add_channel(acme, "slack", webhooks.slack_url)
    await add_channel(acme, "teams", webhooks.teams_url)
    handoff_id = await _escalate(acme)
    webhooks.fail_next("slack", 503)
    webhooks.fail_next("teams", 404)

    first = await notify(handoff_id)
    second = await notify(handoff_id)

    assert first == [Outcome.RETRY, Outcome.FAILED] and second == [Outcome.SENT, Outcome.FAILED]
    assert len(webhooks.slack) == 1 and webhooks.teams == []
    rows = {
        r["channel"]: r
        for r in await db.fetch(
            "SELECT * FROM deliveries WHERE handoff_id = $1 AND channel <> 'bell'", handoff_id
        )
    }
    assert rows["slack"]["status"] == "sent" and rows["slack"]["attempts"] == 2
    assert (
        rows["teams"]["status"] == "failed"
        and rows["teams"]["last_error"] == "Teams webhook: HTTP 404 Not Found"
    )
    for found in rows.values():  # the webhook URL is the secret: never in the records
        assert "teamssecret" not in str(dict(found)) and "slacksecret" not in str(dict(found))


async def test_a_disabled_channel_gets_nothing(
    acme: Tenant, db: asyncpg.Connection, webhooks: FakeWebhooks
) -> None:
    from actors.chat import notify

    channel_id = uuid.uuid4()
    response = await acme.put(
        f"/channels/{channel_id}", {"kind": "slack", "url": webhooks.slack_url, "enabled": False}
    )
    assert response.status_code == 201, response.text
    handoff_id = await _escalate(acme)

    assert await notify(handoff_id) == []
    assert webhooks.slack == []
