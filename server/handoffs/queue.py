"""The queue: an account's open hand-offs, newest first, one keyset page at a time.

The cursor is the (created_at, id) of the last card of a page, opaque to clients; the
statements are tables/queries/queue.py's.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import msgspec

from server.problems import Problem
from server.schemas.handoffs import QueueItem, QueuePage
from tables.enums import Intent
from tables.queries import queue

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_MAX_CHARS = 200


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


async def queue_page(
    *,
    account_id: uuid.UUID,
    team_id: uuid.UUID | None,
    intent: Intent | None,
    cursor: str | None,
    limit: int,
) -> QueuePage:
    after = decode_cursor(cursor) if cursor else None
    # One row more than asked tells whether a next page exists.
    rows = await queue.open_handoffs(
        account_id=account_id,
        team_id=team_id,
        intent=intent,
        after=None if after is None else (after.created_at, after.id),
        limit=limit + 1,
    )
    page, more = rows[:limit], len(rows) > limit
    items = [QueueItem(**msgspec.structs.asdict(row)) for row in page]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].handoff_id) if more else None
    return QueuePage(items=items, next_cursor=next_cursor)
