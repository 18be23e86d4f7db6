"""The queue: an account's open hand-offs, newest first, one keyset page at a time.

The cursor is the (created_at, id) of the last card of a page, opaque to clients; the
statements are tables/queries/queue.py's.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec

from server.handoffs.sla import sla_of_row
from server.problems import Problem
from server.schemas.handoffs import QueueItem, QueuePage
from tables.enums import Intent
from tables.queries import queue

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_MAX_CHARS = 200
# Postgres's 'infinity' as asyncpg reads and writes it: the due key of a card without an SLA.
NO_DUE = datetime.max.replace(tzinfo=UTC)


QueueOrder = Literal["newest", "due"]


class _Cursor(msgspec.Struct, array_like=True):
    created_at: datetime
    id: uuid.UUID
    # order=due only: the last card's claim_due_at; null for one without (sorted last).
    due: datetime | None = None
    by_due: bool = False


def encode_cursor(
    created_at: datetime, handoff_id: uuid.UUID, due: datetime | None = None, by_due: bool = False
) -> str:
    raw = msgspec.json.encode(_Cursor(created_at, handoff_id, due, by_due))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, by_due: bool = False) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        decoded = None
    if decoded is None or decoded.by_due != by_due:
        raise Problem(400, "cursor is not valid: pass the next_cursor of a previous page in the same order.")
    return decoded


def _after(cursor: _Cursor) -> tuple[datetime, datetime, uuid.UUID] | tuple[datetime, uuid.UUID]:
    if cursor.by_due:
        return (cursor.due or NO_DUE, cursor.created_at, cursor.id)
    return (cursor.created_at, cursor.id)


def _item(row: queue.QueueRow) -> QueueItem:
    return QueueItem(
        handoff_id=row.handoff_id,
        session_id=row.session_id,
        intent=row.intent,
        problem_summary=row.problem_summary,
        problem_domain=row.problem_domain,
        priority=row.priority,
        engineer_notes=row.engineer_notes,
        created_at=row.created_at,
        sla=sla_of_row(row),
    )


async def queue_page(
    *,
    account_id: uuid.UUID,
    team_id: uuid.UUID | None,
    intent: Intent | None,
    cursor: str | None,
    limit: int,
    order: QueueOrder = "newest",
) -> QueuePage:
    by_due = order == "due"
    after = decode_cursor(cursor, by_due=by_due) if cursor else None
    # One row more than asked tells whether a next page exists.
    rows = await queue.open_handoffs(
        account_id=account_id,
        team_id=team_id,
        intent=intent,
        after=None if after is None else _after(after),
        limit=limit + 1,
        by_due=by_due,
    )
    page, more = rows[:limit], len(rows) > limit
    items = [_item(row) for row in page]
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor(last.created_at, last.handoff_id, last.claim_due_at, by_due)
    return QueuePage(items=items, next_cursor=next_cursor)
