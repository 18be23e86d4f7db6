"""A local Anthropic Messages API: ``POST /v1/messages``, as the real SDK calls it.

It insists on what the real API insists on (the ``Authorization: Bearer`` key the SDK 2.x
sends, an ``anthropic-version``, a model, messages) and answers from a script: a forced
tool call, plain text, an error status (429 / 529 / 500 with ``retry-after-ms``), or any
of those after a delay. With the script empty it answers a well-formed assessment (when
the request offers tools) or a short text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

API_KEY = "sk-ant-test-key"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

GOOD_ASSESSMENT: dict[str, Any] = {
    "summary_prose": "Outlook cannot reach Exchange after the password reset. Cached credentials "
    "are the likely culprit. Clearing them should restore mail flow.",
    "what_we_know": ["Password was reset this morning", "OWA works"],
    "likely_cause": "Stale cached credentials in Windows Credential Manager",
    "suggested_steps": ["Clear cached credentials", "Recreate the Outlook profile"],
    "confidence": "high",
}
BRIEFING_TEXT = "Briefing: Outlook fails after a password reset; start by clearing cached credentials."


@dataclass
class Answer:
    kind: str  # "tool" | "text" | "status" | "raw"
    value: Any = None
    delay_s: float = 0.0


def tool(value: Any, delay_s: float = 0.0) -> Answer:
    return Answer("tool", value, delay_s)


def text(value: str, delay_s: float = 0.0) -> Answer:
    return Answer("text", value, delay_s)


def status(code: int, delay_s: float = 0.0) -> Answer:
    return Answer("status", code, delay_s)


class FakeAnthropic(ThreadedServer):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self._script: list[Answer] = []
        self._by_content: list[tuple[str, list[Answer]]] = []
        self._default: Answer | None = None
        self._script_lock = threading.Lock()
        self._ids = itertools.count(1)

    def script(self, *answers: Answer) -> None:
        """Answers for the next calls, in order; then the default again."""
        with self._script_lock:
            self._script.extend(answers)

    def when(self, marker: str, *answers: Answer) -> None:
        """Calls whose messages contain ``marker`` get these answers in turn, the last one
        for good: several hand-offs can then meet different faults in one run."""
        with self._script_lock:
            self._by_content.append((marker, list(answers)))

    def always(self, answer: Answer | None) -> None:
        """Answer every call with this (None: back to the well-formed default)."""
        self._default = answer

    def env(self) -> dict[str, str]:
        return {"ANTHROPIC_API_KEY": self.api_key, "ANTHROPIC_BASE_URL": self.url}

    @property
    def calls(self) -> list[Any]:
        return [r.json for r in self.requests_to("POST", "/v1/messages")]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    def _next(self, body: dict[str, Any]) -> Answer:
        content = json.dumps(body.get("messages"))
        with self._script_lock:
            for marker, answers in self._by_content:
                if marker in content:
                    return answers.pop(0) if len(answers) > 1 else answers[0]
            if self._script:
                return self._script.pop(0)
        if self._default is not None:
            return self._default
        return tool(GOOD_ASSESSMENT) if body.get("tools") else text(BRIEFING_TEXT)

    @staticmethod
    def _error(code: int, message: str) -> web.Response:
        return web.json_response(
            {"type": "error", "error": {"type": ERROR_TYPES.get(code, "api_error"), "message": message}},
            status=code,
            headers={"retry-after-ms": "10", "request-id": "req_fake"},
        )

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "invalid x-api-key or bearer token")
        if not request.headers.get("anthropic-version"):
            return self._error(400, "anthropic-version header is required")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(400, "body is not JSON")
        if not body.get("model") or not body.get("messages") or not body.get("max_tokens"):
            return self._error(400, "model, messages and max_tokens are required")
        answer = self._next(body)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if answer.kind == "status":
            return self._error(int(answer.value), f"scripted {answer.value}")
        if answer.kind == "tool":
            choice = body.get("tool_choice") or {}
            name = choice.get("name") or (body.get("tools") or [{}])[0].get("name", "tool")
            content = [
                {"type": "tool_use", "id": f"toolu_{next(self._ids)}", "name": name, "input": answer.value}
            ]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": answer.value}]
            stop_reason = "end_turn"
        return web.json_response(
            {
                "id": f"msg_{next(self._ids)}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": 100, "output_tokens": 50},
            }
        )
