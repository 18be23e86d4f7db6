"""How every Baton process opens its Postgres pool (web lifespan, worker boot, bench).

asyncpg resets a connection on each return to its pool with one more round trip
(``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``). Baton keeps no session
state on pooled connections: no advisory locks, cursors, ``SET`` or ``LISTEN`` (the outbox
relay LISTENs on a connection of its own). So the reset is skipped; asyncpg still rolls
back a transaction left open and drops listeners before reuse, whatever ``reset`` says.
"""

from __future__ import annotations

from typing import Any


async def keep_session_state(connection: Any) -> None:
    """asyncpg's ``reset`` hook: nothing to reset (see the module docstring)."""


POOL_OPTIONS: dict[str, Any] = {"reset": keep_session_state}
