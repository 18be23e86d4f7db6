"""The two checks every host-app ``PUT`` makes, as answers: a row of another account is
404 (as if it did not exist), and what a row points at must be in the same account (422).
The queries are tables/queries/tenancy.py's."""

from __future__ import annotations

import uuid
from typing import Literal

from piccolo.table import Table

from server.problems import Problem
from tables import PsaConnection, Team, User
from tables.queries.tenancy import in_account

ReferencedTable = Literal["users", "teams", "psa_connections"]
_TABLES: dict[ReferencedTable, type[Table]] = {"users": User, "teams": Team, "psa_connections": PsaConnection}


def not_found(what: str) -> Problem:
    """The answer for an id of another account (the upsert wrote nothing)."""
    return Problem(404, f"{what} not found.")


async def require_in_account(
    table: ReferencedTable, row_id: uuid.UUID | None, account_id: uuid.UUID, *, field: str
) -> None:
    """422 when ``row_id`` (if given) is not a row of ``table`` in ``account_id``."""
    if row_id is None:
        return
    if not await in_account(_TABLES[table], row_id=row_id, account_id=account_id):
        raise Problem(422, f"{field} {row_id} does not exist in this account.")
