"""The queue: an account's open hand-offs, newest first, one keyset page at a time.

The cursor is the (created_at, id) of the last card of a page, opaque to clients. Keyset
rather than offset: cards arrive and leave all the time, and an offset would skip or
repeat them. Each filter combination gets its own literal SQL, so Postgres can use the
partial indexes of open hand-offs instead of a plan that fits every combination badly.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import msgspec

from server.problems import Problem
from server.schemas.handoffs import QueueItem, QueuePage
from tables import db
from tables.enums import Intent

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_MAX_CHARS = 200

_SELECT = """
SELECT h.id AS handoff_id, h.session_id, h.intent, s.problem_summary, s.problem_domain,
       h.priority, h.engineer_notes, h.created_at
FROM session_handoffs AS h
JOIN ai_sessions AS s ON s.id = h.session_id
WHERE h.account_id = $1 AND h.state = 'open'
"""


class _Cursor(msgspec.Struct, array_like=True):
    created_at: datetime
    id: uuid.UUID


def encode_cursor(created_at: datetime, handoff_id: uuid.UUID) -> str:
    raw = msgspec.json.encode(_Cursor(created_at, handoff_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise Problem(400, "cursor is not valid: pass the next_cursor of a previous page.") from None


def _query(
    *, team_id: uuid.UUID | None, intent: Intent | None, cursor: _Cursor | None, limit: int
) -> tuple[str, list[object]]:
    sql = _SELECT
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args) + 1}"  # $1 is the account

    if team_id is not None:
        sql += f" AND h.team_id = {arg(team_id)}"
    if intent is not None:
        sql += f" AND h.intent = {arg(intent)}"
    if cursor is not None:
        sql += f" AND (h.created_at, h.id) < ({arg(cursor.created_at)}, {arg(cursor.id)})"
    sql += f" ORDER BY h.created_at DESC, h.id DESC LIMIT {arg(limit + 1)}"
    return sql, args


async def queue_page(
    *,
    account_id: uuid.UUID,
    team_id: uuid.UUID | None,
    intent: Intent | None,
    cursor: str | None,
    limit: int,
) -> QueuePage:
    after = decode_cursor(cursor) if cursor else None
    sql, args = _query(team_id=team_id, intent=intent, cursor=after, limit=limit)
    async with db.connection() as conn:
        rows = await conn.fetch(sql, account_id, *args)
    # One row more than asked tells whether a next page exists.
    page, more = rows[:limit], len(rows) > limit
    items = [QueueItem(**dict(row)) for row in page]
    next_cursor = encode_cursor(page[-1]["created_at"], page[-1]["handoff_id"]) if more else None
    return QueuePage(items=items, next_cursor=next_cursor)
