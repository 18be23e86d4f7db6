"""Where an account's messages go (``notification_channels``, ``psa_connections``), as the
host app writes them. The builder (host-app sync is off the click path). Secrets (a
webhook URL, PSA credentials, a signing secret) are written, never returned: the signing
secret is read back only as whether there is one (``has_signing_secret``), and for
verifying a Slack press (``slack_signing_secret``), never into a record that leaves here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from piccolo.columns import Column

from tables import db
from tables.enums import ChannelKind, PsaKind
from tables.integrations import NotificationChannel, PsaConnection
from tables.queries.tenancy import upsert_in_account


class ChannelRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: ChannelKind
    enabled: bool
    has_signing_secret: bool
    created_at: datetime
    updated_at: datetime


class SlackVerifier(msgspec.Struct, frozen=True, kw_only=True):
    """What verifies a Slack channel's presses: its account and its signing secret."""

    account_id: uuid.UUID
    signing_secret: str

    def __repr__(self) -> str:  # never the secret, in a traceback or a debug line
        return f"SlackVerifier(account_id={self.account_id})"


class PsaConnectionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: PsaKind
    base_url: str
    member_mapping: dict[str, str]
    created_at: datetime
    updated_at: datetime


async def upsert_channel(
    *,
    account_id: uuid.UUID,
    channel_id: uuid.UUID,
    kind: ChannelKind,
    url: str,
    enabled: bool,
    signing_secret: str | msgspec.UnsetType | None = msgspec.UNSET,
) -> tuple[ChannelRecord, bool] | None:
    """(the channel, created?); None when ``channel_id`` is another account's.
    ``signing_secret`` UNSET keeps the stored one."""
    c = NotificationChannel
    values: dict[Column, Any] = {c.kind: kind, c.url: url, c.enabled: enabled}
    if signing_secret is not msgspec.UNSET:
        values[c.signing_secret] = signing_secret
    written = await upsert_in_account(
        c,
        row_id=channel_id,
        account_id=account_id,
        values=values,
        returning=[c.id, c.kind, c.enabled, c.signing_secret, c.created_at, c.updated_at],
    )
    if written is None:
        return None
    row, created = written
    # Only whether there is one leaves this function.
    row["has_signing_secret"] = row.pop("signing_secret") is not None
    return msgspec.convert(row, ChannelRecord), created


async def slack_signing_secret(*, channel_id: uuid.UUID) -> SlackVerifier | None:
    """The account and signing secret of Slack channel ``channel_id``; None when it is no
    Slack channel or has no secret (its presses cannot be verified: refused alike)."""
    c = NotificationChannel
    rows = await db.run(
        c.select(c.account_id, c.signing_secret).where(
            (c.id == channel_id) & (c.kind == "slack") & c.signing_secret.is_not_null()
        )
    )
    return msgspec.convert(rows[0], SlackVerifier) if rows else None


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
