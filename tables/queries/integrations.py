"""Where an account's messages go (``notification_channels``, ``psa_connections``), as the
host app writes them. The builder (host-app sync is off the click path). Secrets (a
webhook URL, PSA credentials) are written, never returned: not in ``returning``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from tables import db
from tables.enums import ChannelKind, PsaKind
from tables.integrations import NotificationChannel, PsaConnection
from tables.queries.tenancy import upsert_in_account


class ChannelRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: ChannelKind
    enabled: bool
    created_at: datetime
    updated_at: datetime


class PsaConnectionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: PsaKind
    base_url: str
    member_mapping: dict[str, str]
    created_at: datetime
    updated_at: datetime


async def upsert_channel(
    *, account_id: uuid.UUID, channel_id: uuid.UUID, kind: ChannelKind, url: str, enabled: bool
) -> tuple[ChannelRecord, bool] | None:
    """(the channel, created?); None when ``channel_id`` is another account's."""
    c = NotificationChannel
    written = await upsert_in_account(
        c,
        row_id=channel_id,
        account_id=account_id,
        values={c.kind: kind, c.url: url, c.enabled: enabled},
        returning=[getattr(c, name) for name in ChannelRecord.__struct_fields__],
    )
    if written is None:
        return None
    row, created = written
    return msgspec.convert(row, ChannelRecord), created


async def upsert_psa_connection(
    *,
    account_id: uuid.UUID,
    connection_id: uuid.UUID,
    kind: PsaKind,
    base_url: str,
    credentials: dict[str, str],
    member_mapping: dict[str, str],
) -> tuple[PsaConnectionRecord, bool] | None:
    """(the connection, created?); None when ``connection_id`` is another account's."""
    p = PsaConnection
    written = await upsert_in_account(
        p,
        row_id=connection_id,
        account_id=account_id,
        values={
            p.kind: kind,
            p.base_url: base_url,
            p.credentials: db.dump_json(credentials),
            p.member_mapping: db.dump_json(member_mapping),
        },
        returning=[getattr(p, name) for name in PsaConnectionRecord.__struct_fields__],
    )
    if written is None:
        return None
    row, created = written
    fields: dict[str, Any] = {**row, "member_mapping": db.load_json(row["member_mapping"]) or {}}
    return msgspec.convert(fields, PsaConnectionRecord), created
