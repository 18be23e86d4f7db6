"""Every route handler and controller the app serves, in one list for create_app()."""

from __future__ import annotations

from typing import Any

from server.api import api_router
from server.health import health, ready
from server.inbox_page import INBOX_PAGE_ROUTES
from server.inbox_socket import inbox_socket
from server.pickup_page import PICKUP_ROUTES

ROUTES: list[Any] = [health, ready, api_router, inbox_socket, *INBOX_PAGE_ROUTES, *PICKUP_ROUTES]
