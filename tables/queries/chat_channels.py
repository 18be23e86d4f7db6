"""An account's chat webhooks as the workers post to them (the host app writes them:
``server/host_app/integrations.py``)."""

from __future__ import annotations

import uuid

import msgspec

from tables import db
from tables.integrations import NotificationChannel


class ChatChannel(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    url: str  # the credential: never logged, never a delivery's recipient


async def enabled_chat_channels(*, account_id: uuid.UUID) -> list[ChatChannel]:
    rows = await db.run(
        NotificationChannel.select(NotificationChannel.id, NotificationChannel.kind, NotificationChannel.url)
        .where(NotificationChannel.account_id == account_id, NotificationChannel.enabled.eq(True))
        .order_by(NotificationChannel.kind, NotificationChannel.id)
    )
    return msgspec.convert(rows, list[ChatChannel])
