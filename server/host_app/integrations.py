"""``PUT /channels/{id}`` and ``PUT /psa-connections/{id}``: where Baton's messages go.

Webhook URLs and PSA credentials are secrets: stored, never returned, never echoed in
an error. A URL must pass SPEC's destination rule (``actors.outbound``: https, no user
name or password, a global address unless BATON_OUTBOUND_ALLOW_CIDRS says otherwise), and
a credential must be something an HTTP header can carry: a refusal is a 422 naming the
rule, and nothing is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

import msgspec

from server.host_app.upsert import CREATED, upsert_in_account
from server.problems import Problem
from server.schemas.host_app import ChannelOut, ChannelPut, PsaConnectionOut, PsaConnectionPut
from tables import db

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


# C0, DEL and C1 controls: a pasted line break in a secret, say. Spaces at either end:
# a header cannot carry them (h11 refuses the request), and no real secret has them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EDGE_SPACE = re.compile(r"^\s|\s$")


async def _destination(url: str, field: str) -> str:
    """The URL's host, once the destination rule lets Baton call it; else 422 saying why."""
    # Imported here: actors bind to REDIS_URL when imported (see server.handoffs.jobs).
    from actors.outbound import DestinationRefused, check_url

    try:
        destination = await check_url(url)
    except DestinationRefused as refused:
        raise Problem(422, f"{field} {refused.detail}") from None
    return destination.host


def _check_credentials(credentials: Mapping[str, str]) -> None:
    """422 naming the first credential no HTTP request could carry; its value never echoed."""
    for name, value in credentials.items():
        if _CONTROL.search(name):
            raise Problem(422, "credentials has a field name holding a control character.")
        if _CONTROL.search(value):
            raise Problem(
                422,
                f"credentials.{name} holds a control character (a pasted line break?); "
                "the value was not stored.",
            )
        if _EDGE_SPACE.search(value):
            raise Problem(422, f"credentials.{name} starts or ends with a space; the value was not stored.")


def _is_retired_teams_host(host: str) -> bool:
    return host == RETIRED_TEAMS_HOST or host.endswith("." + RETIRED_TEAMS_HOST)


async def put_channel(
    account_id: uuid.UUID, channel_id: uuid.UUID, body: ChannelPut
) -> tuple[ChannelOut, bool]:
    from actors.outbound import DestinationRefused, parse_url

    try:
        host = parse_url(body.url).host
    except DestinationRefused as refused:
        raise Problem(422, f"url {refused.detail}") from None
    # Before any lookup: the retired host resolves, but never delivers.
    if body.kind == "teams" and _is_retired_teams_host(host):
        raise Problem(422, RETIRED_TEAMS_MESSAGE)
    await _destination(body.url, "url")
    async with db.connection() as conn:
        row, created = await upsert_in_account(
            conn, UPSERT_CHANNEL, channel_id, account_id, body.kind, body.url, body.enabled, what="Channel"
        )
    return msgspec.convert(dict(row), ChannelOut), created


async def put_psa_connection(
    account_id: uuid.UUID, connection_id: uuid.UUID, body: PsaConnectionPut
) -> tuple[PsaConnectionOut, bool]:
    _check_credentials(body.credentials)
    await _destination(body.base_url, "base_url")
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
