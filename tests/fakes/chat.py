"""Local Slack incoming webhooks and Teams Workflows webhooks, keeping what was posted;
Slack's side of an interaction (the signed request it sends, the ``response_url`` it
takes the answer on).

Slack (``/services/T…/B…/…``) answers ``ok`` or ``invalid_payload`` like Slack does;
Teams (``/workflows/…``) answers 202 for the message envelope with an Adaptive Card
attachment, 400 otherwise. ``FakeResponseUrls`` serves Slack's ``/actions/T…/…/…``
response URLs: a message (``replace_original``) or an ephemeral answer, checked as Slack
checks it. ``signed_interaction`` builds the request Slack posts to an app's
interactivity URL: the form body and its v0 signature headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.server import ThreadedServer, recorded

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


# Block Kit's limits (api.slack.com/reference/block-kit/block-elements#button,
# …/blocks#actions): Slack refuses a message breaking any of them as invalid_blocks.
BUTTON_TEXT_MAX = 75
ACTION_ID_MAX = 255
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
ACTIONS_ELEMENTS_MAX = 25
BUTTON_STYLES = {"primary", "danger"}


def _plain_text_problem(text: Any, max_chars: int) -> str | None:
    if not isinstance(text, dict) or text.get("type") != "plain_text":
        return "a button's text must be a plain_text object"
    value = text.get("text")
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
        return f"a button's text must be 1-{max_chars} characters"
    return None


def button_problem(button: dict[str, Any]) -> str | None:
    """What Slack would refuse in a ``button`` element; None when it is well formed."""
    if problem := _plain_text_problem(button.get("text"), BUTTON_TEXT_MAX):
        return problem
    action_id = button.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or not 1 <= len(action_id) <= ACTION_ID_MAX):
        return f"action_id must be 1-{ACTION_ID_MAX} characters"
    value = button.get("value")
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= BUTTON_VALUE_MAX):
        return f"value must be 1-{BUTTON_VALUE_MAX} characters"
    url = button.get("url")
    if url is not None and (not isinstance(url, str) or not 1 <= len(url) <= BUTTON_URL_MAX):
        return f"url must be 1-{BUTTON_URL_MAX} characters"
    if "style" in button and button["style"] not in BUTTON_STYLES:
        return "style must be primary or danger"
    return None


def _actions_problem(block: dict[str, Any]) -> str | None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= ACTIONS_ELEMENTS_MAX:
        return f"an actions block holds 1-{ACTIONS_ELEMENTS_MAX} elements"
    action_ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
    if len(action_ids) != len(set(action_ids)):
        return "action_ids must be unique within a block"
    for element in elements:
        if not isinstance(element, dict) or not element.get("type"):
            return "an element must be an object with a type"
        if element["type"] == "button" and (problem := button_problem(element)):
            return problem
    return None


def slack_payload_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return "no_text"
    blocks = body.get("blocks")
    if blocks is not None and (
        not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks)
    ):
        return "invalid_blocks"
    for block in blocks or []:
        if block["type"] == "actions" and _actions_problem(block):
            return "invalid_blocks"
    return None


def response_problem(body: Any) -> str | None:
    """What a response_url refuses: a message as an incoming webhook takes it, with
    ``response_type`` (in_channel or ephemeral) and ``replace_original`` /
    ``delete_original`` booleans when given."""
    if problem := slack_payload_problem(body):
        return problem
    if body.get("response_type", "ephemeral") not in {"ephemeral", "in_channel"}:
        return "invalid_response_type"
    for flag in ("replace_original", "delete_original"):
        if flag in body and not isinstance(body[flag], bool):
            return f"invalid_{flag}"
    return None


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature (api.slack.com/authentication/verifying-requests-from-slack)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def block_actions_payload(
    *, slack_user_id: str, value: str, response_url: str, action_id: str = "baton_pickup"
) -> dict[str, Any]:
    """A ``block_actions`` payload as Slack sends it for a button press on a message an
    incoming webhook posted, with the fields Baton does not read (they must not matter)."""
    return {
        "type": "block_actions",
        "user": {"id": slack_user_id, "username": "dana", "name": "dana", "team_id": "T000"},
        "api_app_id": "A000",
        "token": "verification-token-deprecated",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C000"},
        "trigger_id": "123.456.abc",
        "team": {"id": "T000", "domain": "acme"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "C000", "name": "escalations"},
        "message": {
            "type": "message",
            "text": "New escalation",
            "blocks": [{"type": "section", "block_id": "x"}],
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "block_id": "b1",
                "action_id": action_id,
                "text": {"type": "plain_text", "text": "Pick up", "emoji": False},
                "value": value,
                "style": "primary",
                "action_ts": "1700000001.000200",
            }
        ],
        "some_field_slack_adds_later": {"nested": [1, 2, 3]},
    }


def signed_interaction(
    secret: str, payload: dict[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Slack posts to an app's interactivity Request URL."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(secret, stamp, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    return body, headers


def teams_payload_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("type") != "message":
        return "type must be message"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments required"
    first = attachments[0]
    if first.get("contentType") != ADAPTIVE_CARD:
        return "contentType must be an Adaptive Card"
    card = first.get("content") or {}
    if (
        card.get("type") != "AdaptiveCard"
        or not card.get("version")
        or not isinstance(card.get("body"), list)
    ):
        return "content must be an Adaptive Card with a version and a body"
    return None


class FakeWebhooks(ThreadedServer):
    SLACK_PATH = "/services/T000/B000/slacksecret"
    TEAMS_PATH = "/workflows/teamssecret/triggers/manual/run"

    def __init__(self) -> None:
        super().__init__()
        self.slack: list[dict[str, Any]] = []
        self.teams: list[dict[str, Any]] = []
        self._fail: dict[str, list[int]] = {"slack": [], "teams": []}
        self._lock2 = threading.Lock()

    @property
    def slack_url(self) -> str:
        return self.url + self.SLACK_PATH

    @property
    def teams_url(self) -> str:
        return self.url + self.TEAMS_PATH

    def fail_next(self, kind: str, *statuses: int) -> None:
        with self._lock2:
            self._fail[kind].extend(statuses)

    def _failure(self, kind: str) -> int | None:
        with self._lock2:
            return self._fail[kind].pop(0) if self._fail[kind] else None

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.SLACK_PATH, self._slack)
        app.router.add_post(self.TEAMS_PATH, self._teams)

    async def _slack(self, request: web.Request) -> web.Response:
        failure = self._failure("slack")
        if failure:
            return web.Response(status=failure, text="internal_error")
        body = recorded(request).json
        problem = slack_payload_problem(body)
        if problem:
            return web.Response(status=400, text=problem)
        with self._lock2:
            self.slack.append(body)
        return web.Response(text="ok")

    async def _teams(self, request: web.Request) -> web.Response:
        failure = self._failure("teams")
        if failure:
            return web.Response(status=failure)
        body = recorded(request).json
        problem = teams_payload_problem(body)
        if problem:
            return web.json_response(
                {"error": {"code": "InvalidRequestContent", "message": problem}}, status=400
            )
        with self._lock2:
            self.teams.append(body)
        return web.Response(status=202)


class FakeResponseUrls(ThreadedServer):
    """Slack's response URLs: each ``response_url()`` is a fresh one, as each press gets.

    ``hold()`` keeps every answer waiting until ``release()`` (to show Baton's 200 does
    not wait on it)."""

    PATH = "/actions/T000/{n}/{token}"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self._lock2 = threading.Lock()
        self._held: asyncio.Event | None = None
        self._arrived = threading.Condition(self._lock2)

    def response_url(self) -> str:
        return self.url + self.PATH.format(n=uuid.uuid4().int % 10**12, token=uuid.uuid4().hex)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/actions/{team}/{n}/{token}", self._answer)

    def hold(self) -> None:
        async def make() -> None:
            self._held = asyncio.Event()

        self.call(make())

    def release(self) -> None:
        async def set_it() -> None:
            if self._held is not None:
                self._held.set()

        self.call(set_it())

    def wait_for(
        self, count: int, timeout_s: float, log: Callable[[], str] | None = None
    ) -> list[dict[str, Any]]:
        """Once at least ``count`` answers have arrived: all of them (AssertionError after
        timeout, with the tail of ``log``: the server's, say)."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.received)} of {count} Slack answers within {timeout_s:g} s"
                    )
                self._arrived.wait(left)
            return list(self.received)

    async def _answer(self, request: web.Request) -> web.Response:
        body = recorded(request).json
        if self._held is not None:
            await self._held.wait()
        problem = response_problem(body)
        if problem:
            return web.Response(status=400, text=problem)
        with self._arrived:
            self.received.append({**body, "_path": request.path})
            self._arrived.notify_all()
        return web.Response(text="ok")
