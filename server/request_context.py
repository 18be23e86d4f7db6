"""Every request gets an id, and its log lines say which request, account and hand-off.

``X-Request-ID`` is taken from the caller (a reverse proxy, the host app) when it is a
sane token, otherwise made up, and always echoed on the response, so one id follows a
click from the host app through the proxy into Baton's logs. The hand-off id comes from
the path (``/handoffs/{handoff_id}``) or, for a create, from the ``Location`` it answers;
the account from the caller, once authenticated (``bind_caller``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

import log_context

REQUEST_ID_HEADER = "X-Request-ID"
# Echoed into logs and headers: short printable tokens only (no log or header injection).
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_CREATED_HANDOFF = re.compile(r"/handoffs/([0-9a-fA-F-]{36})$")


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _ACCEPTED_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: binds the request id (and hand-off id of the path) for the request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        handoff_id = (scope.get("path_params") or {}).get("handoff_id")
        # Restored afterwards, whatever the request bound: a test client running many
        # requests in one task must not carry one request's account into the next.
        saved = log_context.snapshot()
        log_context.bind(request_id=request_id, handoff_id=handoff_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers[REQUEST_ID_HEADER] = request_id
                created = _CREATED_HANDOFF.search(headers.get("location") or "")
                if created and handoff_id is None:
                    # The access log line of a create names the hand-off it made.
                    log_context.bind(handoff_id=created.group(1))
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            log_context.restore(saved)

    return middleware


async def bind_caller(request: Request[Any, Any, Any]) -> None:
    """App-level ``before_request`` (async: a sync hook would run in a thread, whose context
    changes do not come back): the authenticated caller's account, for the logs."""
    user = request.scope.get("user")
    account_id = getattr(user, "account_id", None)
    if account_id is not None:
        log_context.bind(account_id=account_id)
