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

from server.host_app.upsert import not_found
from server.problems import Problem
from server.schemas.host_app import ChannelOut, ChannelPut, PsaConnectionOut, PsaConnectionPut
from tables.queries import integrations

# Microsoft retired Office 365 connectors: URLs on this host no longer deliver.
RETIRED_TEAMS_HOST = "webhook.office.com"
RETIRED_TEAMS_MESSAGE = (
    "Teams webhooks on webhook.office.com (Office 365 connectors) are retired and no longer "
    "deliver. In Teams, create a Workflows webhook instead (the 'Post to a channel when a "
    "webhook request is received' template) and PUT its URL."
)

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


SLACK_ONLY_SECRET = "signing_secret is for Slack channels only (Teams has no signed interactions here)."


def _signing_secret(body: ChannelPut) -> str | msgspec.UnsetType | None:
    """What to store: a Teams channel holds none (a channel PUT as Teams after being
    Slack loses its secret); a Slack one keeps the stored secret when the PUT omits it."""
    if body.kind != "slack":
        if isinstance(body.signing_secret, str):
            raise Problem(422, SLACK_ONLY_SECRET)
        return None
    return body.signing_secret


async def put_channel(
    account_id: uuid.UUID, channel_id: uuid.UUID, body: ChannelPut
) -> tuple[ChannelOut, bool]:
    from actors.outbound import DestinationRefused, parse_url

    signing_secret = _signing_secret(body)
    try:
        host = parse_url(body.url).host
    except DestinationRefused as refused:
        raise Problem(422, f"url {refused.detail}") from None
    # Before any lookup: the retired host resolves, but never delivers.
    if body.kind == "teams" and _is_retired_teams_host(host):
        raise Problem(422, RETIRED_TEAMS_MESSAGE)
    await _destination(body.url, "url")
    written = await integrations.upsert_channel(
        account_id=account_id,
        channel_id=channel_id,
        kind=body.kind,
        url=body.url,
        enabled=body.enabled,
        signing_secret=signing_secret,
    )
    if written is None:
        raise not_found("Channel")
    channel, created = written
    return msgspec.convert(channel, ChannelOut, from_attributes=True), created


async def put_psa_connection(
    account_id: uuid.UUID, connection_id: uuid.UUID, body: PsaConnectionPut
) -> tuple[PsaConnectionOut, bool]:
    _check_credentials(body.credentials)
    await _destination(body.base_url, "base_url")
    written = await integrations.upsert_psa_connection(
        account_id=account_id,
        connection_id=connection_id,
        kind=body.kind,
        base_url=body.base_url,
        credentials=body.credentials,
        member_mapping={str(user_id): member for user_id, member in body.member_mapping.items()},
    )
    if written is None:
        raise not_found("PSA connection")
    connection, created = written
    out = PsaConnectionOut(
        id=connection.id,
        kind=connection.kind,
        base_url=connection.base_url,
        credential_fields=sorted(body.credentials),
        member_mapping=connection.member_mapping,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )
    return out, created
