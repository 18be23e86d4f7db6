"""Every route handler and controller the app serves, in one list for create_app()."""

from __future__ import annotations

from typing import Any

from server.health import health, ready

ROUTES: list[Any] = [health, ready]
