"""The in-app bell: a user's notifications, newest first, and marking one read."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from server.problems import Problem
from server.schemas.background import NotificationOut, NotificationsPage
from tables import db

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CURSOR_MAX_CHARS = 200

COLUMNS = "id, kind, title, body, link, handoff_id, session_id, read_at, created_at"

# Keyset pagination on (created_at, id), newest first; $3/$4 NULL for the first page.
PAGE = f"""
SELECT {COLUMNS} FROM app_notifications
WHERE account_id = $1 AND user_id = $2
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid))
  AND (NOT $5 OR read_at IS NULL)
ORDER BY created_at DESC, id DESC
LIMIT $6
"""

UNREAD = "SELECT count(*) FROM app_notifications WHERE account_id = $1 AND user_id = $2 AND read_at IS NULL"

MARK_READ = f"""
UPDATE app_notifications SET read_at = coalesce(read_at, now())
WHERE id = $1 AND account_id = $2 AND user_id = $3
RETURNING {COLUMNS}
"""


def _cursor(created_at: datetime, notification_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{notification_id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        moment, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(moment), uuid.UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(400, "cursor is not one this API gave out.") from None


async def list_notifications(
    *, account_id: uuid.UUID, user_id: uuid.UUID, limit: int, cursor: str | None, unread_only: bool
) -> NotificationsPage:
    after_at, after_id = _parse_cursor(cursor) if cursor else (None, None)
    async with db.connection() as conn:
        rows = await conn.fetch(PAGE, account_id, user_id, after_at, after_id, unread_only, limit + 1)
        unread = await conn.fetchval(UNREAD, account_id, user_id)
    items = [NotificationOut(**dict(row)) for row in rows[:limit]]
    next_cursor = _cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return NotificationsPage(items=items, unread_count=unread, next_cursor=next_cursor)


async def mark_read(
    *, account_id: uuid.UUID, user_id: uuid.UUID, notification_id: uuid.UUID
) -> NotificationOut:
    """Idempotent; another user's notification is 404, as if it did not exist."""
    async with db.connection() as conn:
        row = await conn.fetchrow(MARK_READ, notification_id, account_id, user_id)
    if row is None:
        raise Problem(404, "Notification not found.")
    return NotificationOut(**dict(row))
