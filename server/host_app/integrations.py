"""``PUT /channels/{id}`` and ``PUT /psa-connections/{id}``: where Baton's messages go.

Webhook URLs and PSA credentials are secrets: stored, never returned.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import msgspec

from server import db
from server.host_app.upsert import CREATED, upsert_in_account
from server.problems import Problem
from server.schemas.host_app import ChannelOut, ChannelPut, PsaConnectionOut, PsaConnectionPut

# Microsoft retired Office 365 connectors: URLs on this host no longer deliver.
RETIRED_TEAMS_HOST = "webhook.office.com"
RETIRED_TEAMS_MESSAGE = (
    "Teams webhooks on webhook.office.com (Office 365 connectors) are retired and no longer "
    "deliver. In Teams, create a Workflows webhook instead (the 'Post to a channel when a "
    "webhook request is received' template) and PUT its URL."
)

UPSERT_CHANNEL = f"""
INSERT INTO notification_channels (id, account_id, kind, url, enabled, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, now(), now())
ON CONFLICT (id) DO UPDATE
SET kind = EXCLUDED.kind, url = EXCLUDED.url, enabled = EXCLUDED.enabled, updated_at = now()
WHERE notification_channels.account_id = EXCLUDED.account_id
RETURNING {CREATED}, id, kind, enabled, created_at, updated_at
"""

UPSERT_PSA_CONNECTION = f"""
INSERT INTO psa_connections
    (id, account_id, kind, base_url, credentials, member_mapping, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, now(), now())
ON CONFLICT (id) DO UPDATE
SET kind = EXCLUDED.kind, base_url = EXCLUDED.base_url, credentials = EXCLUDED.credentials,
    member_mapping = EXCLUDED.member_mapping, updated_at = now()
WHERE psa_connections.account_id = EXCLUDED.account_id
RETURNING {CREATED}, id, kind, base_url, member_mapping, created_at, updated_at
"""


def _host_of(url: str) -> str:
    """The URL's host, or 400 for a URL that only looks like one (``https://[``)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError as exc:
        raise Problem(400, f"url is not a valid URL: {exc}") from None


def _is_retired_teams_url(url: str) -> bool:
    host = _host_of(url)
    return host == RETIRED_TEAMS_HOST or host.endswith("." + RETIRED_TEAMS_HOST)


async def put_channel(
    account_id: uuid.UUID, channel_id: uuid.UUID, body: ChannelPut
) -> tuple[ChannelOut, bool]:
    if _is_retired_teams_url(body.url) and body.kind == "teams":
        raise Problem(422, RETIRED_TEAMS_MESSAGE)
    async with db.connection() as conn:
        row, created = await upsert_in_account(
            conn, UPSERT_CHANNEL, channel_id, account_id, body.kind, body.url, body.enabled, what="Channel"
        )
    return msgspec.convert(dict(row), ChannelOut), created


async def put_psa_connection(
    account_id: uuid.UUID, connection_id: uuid.UUID, body: PsaConnectionPut
) -> tuple[PsaConnectionOut, bool]:
    mapping = {str(user_id): member for user_id, member in body.member_mapping.items()}
    async with db.connection() as conn:
        row, created = await upsert_in_account(
            conn,
            UPSERT_PSA_CONNECTION,
            connection_id,
            account_id,
            body.kind,
            body.base_url,
            db.dump_json(body.credentials),
            db.dump_json(mapping),
            what="PSA connection",
        )
    out = PsaConnectionOut(
        id=row["id"],
        kind=row["kind"],
        base_url=row["base_url"],
        credential_fields=sorted(body.credentials),
        member_mapping=db.load_json(row["member_mapping"]) or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
    return out, created
