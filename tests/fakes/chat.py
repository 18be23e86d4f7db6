"""Local Slack incoming webhooks and Teams Workflows webhooks, keeping what was posted.

Slack (``/services/T…/B…/…``) answers ``ok`` or ``invalid_payload`` like Slack does;
Teams (``/workflows/…``) answers 202 for the message envelope with an Adaptive Card
attachment, 400 otherwise.
"""

from __future__ import annotations

import threading
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer, recorded

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def slack_payload_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return "no_text"
    blocks = body.get("blocks")
    if blocks is not None and (
        not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks)
    ):
        return "invalid_blocks"
    return None


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
