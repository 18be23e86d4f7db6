"""``/api/v1``: every endpoint behind the bearer-token middleware, in one Router (Slack's
interactions excepted: ``exclude_from_auth``, their signature is their authentication)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from litestar import Request, Response, Router
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware

from server.auth import BearerAuthMiddleware
from server.controllers.background import HandoffWorkController, NotificationController
from server.controllers.handoffs import API_PREFIX, HandoffController
from server.controllers.host_app import HostAppController, SessionReadController
from server.controllers.inbox_page import InboxPageController
from server.controllers.integrations import SlackInteractionsController
from server.controllers.policies import EscalationPolicyController
from server.problems import problem_response

log = logging.getLogger("baton.server")


def _on_unstorable_value(request: Request[Any, Any, Any], exc: asyncpg.DataError) -> Response[Any]:
    """A value Postgres refuses (a NUL character in text, say): the client's input, and
    the transaction that tried it is rolled back, so nothing was written."""
    log.info("refused %s %s: %s", request.method, request.url.path, exc)
    return problem_response(400, f"The request holds a value that cannot be stored: {exc}")


api_router = Router(
    path=API_PREFIX,
    route_handlers=[
        HostAppController,
        SessionReadController,
        HandoffController,
        HandoffWorkController,
        NotificationController,
        InboxPageController,
        EscalationPolicyController,
        SlackInteractionsController,
    ],
    middleware=[DefineMiddleware(BearerAuthMiddleware, scopes={ScopeType.HTTP})],
    exception_handlers={asyncpg.DataError: _on_unstorable_value},
)
