"""The in-app bell (``app_notifications``): the rows an escalation rings, and a user's page
of them. The page and the read mark are off the click path (the builder); the ringing
is part of a create's transaction (SQL, tables/queries/__init__.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec
from piccolo.custom_types import Combinable
from piccolo.querystring import QueryString

from tables import db
from tables.delivery import AppNotification

# One statement picks the recipients, writes their rows, and records each as a ``bell``
# delivery (sent at birth: the row is the delivery). A statement the builder cannot say
# (an INSERT … SELECT feeding a second INSERT), on the click path besides.
# $7 is the target (or NULL): then it alone, else the seniors ($10) but the creator ($11).
INSERT_BELL_ROWS = """
WITH rung AS (
    INSERT INTO app_notifications
        (id, account_id, user_id, kind, title, body, link, handoff_id, session_id, created_at)
    SELECT gen_random_uuid(), $1, u.id, $2, $3, $4, $5, $6, $8, $9
    FROM users AS u
    WHERE u.account_id = $1
      AND u.is_active AND u.deleted_at IS NULL
      AND CASE
            WHEN $7::uuid IS NOT NULL THEN u.id = $7::uuid
            ELSE u.account_role = ANY($10::text[]) AND u.id <> $11
          END
    RETURNING user_id
)
INSERT INTO deliveries
    (id, account_id, handoff_id, channel, recipient, status, attempts, sent_at, created_at, updated_at)
SELECT gen_random_uuid(), $1, $6, 'bell', user_id::text, 'sent', 1, $9, $9, $9
FROM rung
"""


async def ring_bell(
    conn: asyncpg.Connection,
    *,
    account_id: uuid.UUID,
    handoff_id: uuid.UUID,
    session_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
    link: str | None,
    target_user_id: uuid.UUID | None,
    roles: Sequence[str],
    creator_id: uuid.UUID,
    now: datetime,
) -> None:
    await conn.execute(
        INSERT_BELL_ROWS,
        account_id,
        kind,
        title,
        body,
        link,
        handoff_id,
        target_user_id,
        session_id,
        now,
        list(roles),
        creator_id,
    )


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    title: str
    body: str
    link: str | None
    handoff_id: uuid.UUID | None
    session_id: uuid.UUID | None
    read_at: datetime | None
    created_at: datetime


_n = AppNotification
_COLUMNS = tuple(getattr(_n, name) for name in Notification.__struct_fields__)


def _of_user(account_id: uuid.UUID, user_id: uuid.UUID) -> Combinable:
    return (_n.account_id == account_id) & (_n.user_id == user_id)


async def page(
    *,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    unread_only: bool,
    limit: int,
) -> list[Notification]:
    """Newest first, keyset on (created_at, id): at most ``limit`` older than ``after``."""
    query = _n.select(*_COLUMNS).where(_of_user(account_id, user_id))
    if after is not None:
        # A row comparison, which the builder has no word for, so that the index on
        # (user_id, created_at DESC, id DESC) starts the scan at the cursor.
        query = query.where(QueryString("({}, {}) < ({}, {})", _n.created_at, _n.id, *after))
    if unread_only:
        query = query.where(_n.read_at.is_null())
    rows = await db.run(query.order_by(_n.created_at, _n.id, ascending=False).limit(limit))
    return [msgspec.convert(row, Notification) for row in rows]


async def unread_count(*, account_id: uuid.UUID, user_id: uuid.UUID) -> int:
    count: int = await db.run(_n.count().where(_of_user(account_id, user_id), _n.read_at.is_null()))
    return count


async def mark_read(
    *, account_id: uuid.UUID, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification | None:
    """Marks it read, once (a second call keeps the first ``read_at``); None when it is
    not this user's."""
    mine = (_n.id == notification_id) & _of_user(account_id, user_id)
    rows = await db.run(
        _n.update({_n.read_at: QueryString("coalesce({}, now())", _n.read_at)})
        .where(mine)
        .returning(*_COLUMNS)
    )
    return msgspec.convert(rows[0], Notification) if rows else None
