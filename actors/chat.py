"""Slack and Microsoft Teams messages about an escalation, one per enabled webhook.

Slack: an incoming webhook, ``{"text", "blocks"}`` (``text`` is the notification
fallback). Teams: a Workflows ("Post to a channel when a webhook request is received")
webhook, the message envelope with one Adaptive Card attachment (1.4; RichTextBlock
since 1.2). Users' text is plain text to both (SPEC "Injection"): Slack ``plain_text``
(escaped), Teams ``TextRun``, never mrkdwn or Markdown. Each names the PSA
ticket when there is one and links to the inbox. Each webhook is its own ``slack`` /
``teams`` delivery (recipient: the channel's id, never its URL, which is a secret).

A Slack channel with a signing secret also gets a Pick up button (``PICKUP_ACTION_ID``,
its value the hand-off's id): Slack posts presses to the Slack app's interactivity URL,
``/api/v1/integrations/slack/{channel_id}/interactions``, which Baton can verify only
with that secret, so a channel without one gets no button (a press could only fail).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.context import HandoffContext, load
from actors.deliveries import Claim, Outcome, SendError
from actors.http import call, is_permanent, status_line
from settings import Settings, get_settings
from tables.queries.chat_channels import ChatChannel, enabled_chat_channels

log = logging.getLogger("baton.actors.chat")

MAX_ATTEMPTS = 8
SLACK_TEXT_MAX_CHARS = 2900  # a section block takes 3,000
SLACK_HEADER_MAX_CHARS = 150
SLACK_FIELD_MAX_CHARS = 2000  # a section's field takes 2,000
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
NO_REASON = "No reason provided."
# Slack's interaction payload names the button by action_id; its value is the hand-off id.
PICKUP_ACTION_ID = "baton_pickup"
PICKUP_BUTTON_TEXT = "Pick up"


def inbox_link(settings: Settings | None = None) -> str | None:
    settings = settings or get_settings()
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/inbox"
    if settings.frontend_url:
        return f"{settings.frontend_url.rstrip('/')}/escalations"
    return None


def headline(ctx: HandoffContext) -> str:
    problem = ctx.problem_summary or "an active session"
    if ctx.psa_ticket_id:
        return f"{ctx.handed_off_by_name} escalated ticket #{ctx.psa_ticket_id}: {problem}"
    return f"{ctx.handed_off_by_name} escalated: {problem}"


def _reason(ctx: HandoffContext) -> str:
    return (ctx.engineer_notes or "").strip() or NO_REASON


def slack_escape(text: str) -> str:
    """Slack's control characters; user text must not become links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_plain(text: str, max_chars: int = SLACK_TEXT_MAX_CHARS) -> dict[str, Any]:
    """User text for Slack: ``plain_text``, which Slack never reads as mrkdwn (``*``, ``_``,
    ``~``, backticks and ``<url|…>`` stay characters), escaped all the same so nothing in
    it is a link or a mention wherever Slack parses it."""
    return {"type": "plain_text", "text": _clipped(slack_escape(text), max_chars), "emoji": False}


def _clipped(escaped: str, max_chars: int) -> str:
    """At most ``max_chars``, never ending in half an entity (``&am``)."""
    clipped = escaped[:max_chars]
    amp = clipped.rfind("&", max(0, len(clipped) - 4))
    return clipped[:amp] if amp != -1 and ";" not in clipped[amp:] else clipped


def _facts(ctx: HandoffContext) -> list[tuple[str, str]]:
    facts = [("Reason", _reason(ctx)), ("Priority", ctx.priority)]
    if ctx.psa_ticket_id:
        facts.append(("PSA ticket", f"#{ctx.psa_ticket_id}"))
    return facts


@dataclass(frozen=True, slots=True)
class PickedUp:
    """Who picked the hand-off up, for the message that replaces the button."""

    name: str
    at: datetime


def clock_time(at: datetime) -> str:
    """ "14:02 UTC": the time a pick-up is told in Slack (Baton knows no reader's zone)."""
    return at.astimezone(UTC).strftime("%H:%M UTC")


def picked_up_line(picked_up: PickedUp) -> str:
    return f"Picked up by {picked_up.name} at {clock_time(picked_up.at)}"


def pickup_button(handoff_id: uuid.UUID) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": PICKUP_BUTTON_TEXT, "emoji": False},
        "action_id": PICKUP_ACTION_ID,
        "value": str(handoff_id),
        "style": "primary",
    }


def slack_message(
    ctx: HandoffContext, link: str | None, *, pickup: bool = False, picked_up: PickedUp | None = None
) -> dict[str, Any]:
    """The escalation's message; with ``pickup`` a Pick up button, with ``picked_up`` the
    line saying who took it instead (the message a winning press replaces it with)."""
    title = headline(ctx)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "New escalation"[:SLACK_HEADER_MAX_CHARS]}},
        {"type": "section", "text": slack_plain(title)},
        {
            "type": "section",
            "fields": [slack_plain(f"{name}: {value}", SLACK_FIELD_MAX_CHARS) for name, value in _facts(ctx)],
        },
    ]
    if picked_up is not None:
        blocks.append({"type": "section", "text": slack_plain(picked_up_line(picked_up))})
    buttons: list[dict[str, Any]] = []
    if pickup and picked_up is None:
        buttons.append(pickup_button(ctx.handoff_id))
    if link:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the inbox"},
                "url": link,
                "action_id": "open_inbox",
            }
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    # The notification's text: no mrkdwn read in it, and nothing a link or a mention.
    fallback = _clipped(slack_escape(f"New escalation: {title}"), SLACK_TEXT_MAX_CHARS)
    return {"text": fallback, "mrkdwn": False, "blocks": blocks}


def teams_text(text: str, **style: Any) -> dict[str, Any]:
    """A ``RichTextBlock`` of one ``TextRun``: Teams renders a TextRun's text as it is,
    never as Markdown (a TextBlock's and a FactSet's text are Markdown: a user's
    ``[Re-authenticate](http://…)`` became a link from the Baton bot)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}


def teams_message(ctx: HandoffContext, link: str | None) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "New escalation", "weight": "Bolder", "size": "Medium"},
        teams_text(headline(ctx)),
    ]
    for name, value in _facts(ctx):
        body.append(
            {
                "type": "RichTextBlock",
                "inlines": [
                    {"type": "TextRun", "text": f"{name}: ", "weight": "Bolder"},
                    {"type": "TextRun", "text": value},
                ],
            }
        )
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the inbox", "url": link}]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


MESSAGE_BUILDERS = {"slack": slack_message, "teams": teams_message}


def channel_message(channel: ChatChannel, ctx: HandoffContext, link: str | None) -> dict[str, Any]:
    """The message for ``channel``: a Slack one carries Pick up when it can verify presses."""
    if channel.kind == "slack":
        return slack_message(ctx, link, pickup=channel.verifies_presses)
    return MESSAGE_BUILDERS[channel.kind](ctx, link)


WEBHOOK_NAMES = {"slack": "Slack webhook", "teams": "Teams webhook"}


async def post_webhook(kind: str, url: str, body: dict[str, Any]) -> None:
    what = WEBHOOK_NAMES[kind]
    response = await call("POST", url, what=what, json=body)
    if not response.is_success:
        raise SendError(f"{what}: {status_line(response)}", permanent=is_permanent(response.status_code))


async def notify(handoff_id: uuid.UUID) -> list[Outcome]:
    ctx = await load(handoff_id)
    if ctx is None or ctx.intent != "escalate":
        return []
    channels = await enabled_chat_channels(account_id=ctx.account_id)
    link = inbox_link()
    jobs = []
    for channel in channels:
        kind = channel.kind
        if kind not in MESSAGE_BUILDERS:
            continue
        rows = await deliveries.ensure(ctx.account_id, handoff_id, kind, [str(channel.id)])
        body = channel_message(channel, ctx, link)

        async def send(
            claim: Claim, kind: str = kind, url: str = channel.url, body: dict[str, Any] = body
        ) -> None:
            await post_webhook(kind, url, body)

        jobs.append(deliveries.deliver(rows[str(channel.id)], send, max_attempts=MAX_ATTEMPTS))
    # Concurrently: a slow Teams never holds up Slack.
    return list(await asyncio.gather(*jobs))


# The webhooks are posted concurrently: two send timeouts, plus room for Postgres.
SENDS_PER_RUN_MAX = 2
TIME_LIMIT_MARGIN_S = 30
CHAT_TIME_LIMIT_MS = int((SENDS_PER_RUN_MAX * get_settings().delivery_timeout_s + TIME_LIMIT_MARGIN_S) * 1000)


@dramatiq.actor(
    broker=broker,
    queue_name="notify",
    max_retries=MAX_ATTEMPTS + 2,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=CHAT_TIME_LIMIT_MS,
)
async def notify_chat(handoff_id: str, session_id: str | None = None) -> None:
    """Outbox job of an escalation: every enabled Slack and Teams webhook of the account."""
    outcomes = await notify(uuid.UUID(handoff_id))
    deliveries.raise_if_pending(f"chat messages of hand-off {handoff_id}", outcomes)
