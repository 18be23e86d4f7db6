"""The in-app bell: a user's notifications, newest first, and marking one read."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import msgspec

from server.problems import Problem
from server.schemas.background import NotificationOut, NotificationsPage
from tables.queries import notifications

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CURSOR_MAX_CHARS = 200


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
    after = _parse_cursor(cursor) if cursor else None
    rows = await notifications.page(
        account_id=account_id, user_id=user_id, after=after, unread_only=unread_only, limit=limit + 1
    )
    unread = await notifications.unread_count(account_id=account_id, user_id=user_id)
    items = [msgspec.convert(row, NotificationOut, from_attributes=True) for row in rows[:limit]]
    next_cursor = _cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return NotificationsPage(items=items, unread_count=unread, next_cursor=next_cursor)


async def mark_read(
    *, account_id: uuid.UUID, user_id: uuid.UUID, notification_id: uuid.UUID
) -> NotificationOut:
    """Idempotent; another user's notification is 404, as if it did not exist."""
    row = await notifications.mark_read(
        account_id=account_id, user_id=user_id, notification_id=notification_id
    )
    if row is None:
        raise Problem(404, "Notification not found.")
    return msgspec.convert(row, NotificationOut, from_attributes=True)
