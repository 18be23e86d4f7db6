"""The two rules every host-app write keeps: a row of another account is never touched
(404 to the caller, as if it did not exist), and what a row points at is in its account.

The host app chooses the ids (``PUT /users/{id}`` …), so an id may already belong to
another account. The builder (host-app sync is off the click path).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from tables import db
from tables._columns import utcnow


async def upsert_in_account(
    table: type[Table],
    *,
    row_id: uuid.UUID,
    account_id: uuid.UUID,
    values: Mapping[Column, Any],
    returning: Sequence[Column],
    insert_values: Mapping[Column, Any] | None = None,
) -> tuple[dict[str, Any], bool] | None:
    """(the row's ``returning`` columns, created?) after writing ``values``; None when
    ``row_id`` is another account's. ``insert_values`` are written only by an insert.

    An update first (the usual PUT replaces what is there), else an insert that yields
    to a concurrent one (ON CONFLICT DO NOTHING), after which the update runs again:
    whoever inserts first creates, everyone else updates, and a row of another account
    is never written (the update's WHERE names the account). ``updated_at`` is set
    here: Piccolo's ``auto_update`` works only through its ORM objects.
    """
    now = utcnow()
    id_column, account_column, updated_at = (
        table._meta.primary_key,
        _column(table, "account_id"),
        _column(table, "updated_at"),
    )

    assignments: dict[Column | str, Any] = dict(values.items())
    assignments[updated_at] = now

    def update() -> Any:
        return (
            table.update(assignments)
            .where((id_column == row_id) & (account_column == account_id))
            .returning(*returning)
        )

    rows = await db.run(update())
    if rows:
        return rows[0], False
    fields = {column._meta.name: value for column, value in {**values, **(insert_values or {})}.items()}
    row = table(id=row_id, account_id=account_id, created_at=now, updated_at=now, **fields)
    rows = await db.run(
        table.insert(row).on_conflict(target=id_column, action="DO NOTHING").returning(*returning)
    )
    if rows:
        return rows[0], True
    rows = await db.run(update())  # someone inserted it first: theirs, or another account's
    return (rows[0], False) if rows else None


async def in_account(table: type[Table], *, row_id: uuid.UUID, account_id: uuid.UUID) -> bool:
    """Whether ``row_id`` is a row of ``table`` in ``account_id``."""
    found: bool = await db.run(
        table.exists().where(
            (table._meta.primary_key == row_id) & (_column(table, "account_id") == account_id)
        )
    )
    return found


async def ids_in_account(
    table: type[Table], *, row_ids: Collection[uuid.UUID], account_id: uuid.UUID
) -> set[uuid.UUID]:
    """Which of ``row_ids`` are rows of ``table`` in ``account_id`` (one query for a list)."""
    if not row_ids:
        return set()
    id_column = table._meta.primary_key
    rows = await db.run(
        table.select(id_column).where(
            id_column.is_in(list(row_ids)) & (_column(table, "account_id") == account_id)
        )
    )
    return {row[id_column._meta.name] for row in rows}


def _column(table: type[Table], name: str) -> Column:
    return table._meta.get_column_by_name(name)
