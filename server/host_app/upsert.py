"""The two checks every host-app ``PUT`` makes: the row is not another account's, and
what it points at is in the same account."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import asyncpg

from server.problems import Problem

# ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE <table>.account_id = EXCLUDED.account_id
# RETURNING (xmax = 0) AS created, …`` returns no row when the id is another account's
# (the WHERE refuses the update): one statement, no window for a race.
CREATED = "(xmax = 0) AS created"

ReferencedTable = Literal["users", "teams", "psa_connections"]


async def upsert_in_account(
    conn: asyncpg.Connection, sql: str, *args: Any, what: str
) -> tuple[asyncpg.Record, bool]:
    """(row, created) of an upsert written as above; 404 for another account's id."""
    row = await conn.fetchrow(sql, *args)
    if row is None:
        raise Problem(404, f"{what} not found.")
    return row, bool(row["created"])


async def require_in_account(
    conn: asyncpg.Connection,
    table: ReferencedTable,
    row_id: uuid.UUID | None,
    account_id: uuid.UUID,
    *,
    field: str,
) -> None:
    """422 when ``row_id`` (if given) is not a row of ``table`` in ``account_id``."""
    if row_id is None:
        return
    found = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1 AND account_id = $2)", row_id, account_id
    )
    if not found:
        raise Problem(422, f"{field} {row_id} does not exist in this account.")
