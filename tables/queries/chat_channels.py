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
    # A signing secret is stored, so Baton can verify its Pick up presses (the secret
    # itself stays in the database).
    verifies_presses: bool = False


async def enabled_chat_channels(*, account_id: uuid.UUID) -> list[ChatChannel]:
    c = NotificationChannel
    rows = await db.run(
        c.select(c.id, c.kind, c.url, c.signing_secret)
        .where(c.account_id == account_id, c.enabled.eq(True))
        .order_by(c.kind, c.id)
    )
    return [
        ChatChannel(
            id=row["id"], kind=row["kind"], url=row["url"], verifies_presses=row["signing_secret"] is not None
        )
        for row in rows
    ]
