"""User text in chat messages is plain text to Slack and Teams (SPEC "Injection").

The probe's escalation notes held ``[Re-authenticate](http://…)``: Teams renders a
TextBlock's (and a FactSet's) text as Markdown, so a link appeared in a card from the
Baton bot. Through a real worker and the local Slack and Teams webhooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg

from tests.actors import conftest as actor_fixtures
from tests.actors.conftest import add_channel, escalation_session, eventually, worker_env
from tests.api.conftest import Tenant
from tests.conftest import BatonProcesses
from tests.fakes.chat import FakeWebhooks

# The fixtures of tests/actors, by name (this folder has no conftest of its own).
client, tenant = actor_fixtures.client, actor_fixtures.tenant
acme, webhooks = actor_fixtures.acme, actor_fixtures.webhooks

WAIT_S = 40
PHISH = "[Re-authenticate](http://198.51.100.7/login)"
RESTYLE = "*bold* _italic_ ~struck~ `code` <http://198.51.100.7/login|Re-authenticate> <!channel>"
SUMMARY = f"VPN down {PHISH} # Heading"
NOTES = f"Please {PHISH} {RESTYLE}"
TECH_NAME = "Tess **Tech**"


def _text_objects(node: Any, parent: dict[str, Any] | None = None) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (object, text) of a card or a Slack message: each string under a text-like key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "value", "title") and isinstance(value, str):
                yield node, value
            else:
                yield from _text_objects(value, node)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item, parent)


def _users_text(text: str) -> bool:
    return any(mark in text for mark in ("Re-authenticate", "bold", "VPN down", "Tess", "4242"))


async def test_markdown_in_user_text_reaches_teams_only_as_textruns_and_slack_only_as_plain_text(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, webhooks: FakeWebhooks
) -> None:
    await add_channel(acme, "slack", webhooks.slack_url)
    await add_channel(acme, "teams", webhooks.teams_url)
    tech = await acme.user(name=TECH_NAME)
    await acme.user("engineer")
    session_id = await escalation_session(
        acme, tech, problem_summary=SUMMARY, psa_ticket_id="[4242](http://x)"
    )
    await acme.handed_off(tech, session_id, "escalate", engineer_notes=NOTES)
    worker = baton.worker(env=worker_env())

    async def both_posted() -> bool:
        return bool(webhooks.slack and webhooks.teams)

    await eventually(both_posted, WAIT_S, "the Slack and Teams messages", worker.log)
    [teams] = webhooks.teams
    [slack] = webhooks.slack

    card = teams["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    teams_texts = list(_text_objects(card["body"]))
    carrying_user_text = [(obj.get("type"), text) for obj, text in teams_texts if _users_text(text)]
    assert carrying_user_text, "the card must still show what the technician wrote"
    assert {kind for kind, _ in carrying_user_text} == {"TextRun"}
    shown = " ".join(text for _, text in carrying_user_text)
    assert NOTES in shown and SUMMARY in shown and TECH_NAME in shown  # as written, unescaped
    for block in card["body"]:
        if block["type"] == "RichTextBlock":
            assert all(inline["type"] == "TextRun" for inline in block["inlines"])

    assert slack["mrkdwn"] is False
    slack_texts = [
        (obj.get("type"), text) for obj, text in _text_objects(slack["blocks"]) if _users_text(text)
    ]
    assert slack_texts and {kind for kind, _ in slack_texts} == {"plain_text"}
    everything = str(slack)
    assert "<http" not in everything and "<!channel>" not in everything  # no link, no mention
    assert "&lt;http://198.51.100.7/login|Re-authenticate&gt;" in slack["blocks"][2]["fields"][0]["text"]
    assert "*bold* _italic_ ~struck~ `code`" in slack["blocks"][2]["fields"][0]["text"]  # characters, inert
