"""Autotask (PSA): ticket notes through the REST API v1.0.

Every call carries ``ApiIntegrationCode``, ``UserName`` and ``Secret``. The tenant's zone
is looked up first (``GET {lookup}/v1.0/zoneInformation?user=…``). The note's
``noteType`` and ``publish`` are picklist values that differ between tenants: they are
read from ``TicketNotes/entityInformation/fields`` (an internal one preferred, else the
tenant's default), never hard-coded. A mapped member is the ``ImpersonationResourceId``.

Credentials: ``username``, ``secret``, ``integration_code``. ``base_url`` is the zone
lookup root, ``https://webservices.autotask.net/atservicesrest`` when empty.

Process memory keeps per connection (``CACHE_TTL_S``): the zone's URL and the two
picklist values.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from actors.http import call
from actors.psa.base import (
    NOTE_TEXT_MAX_CHARS,
    NOTE_TITLE_MAX_CHARS,
    Note,
    PsaConnectionInfo,
    PsaError,
    check,
    credential,
    json_body,
    note_id_from,
    numeric_ticket_id,
)

DEFAULT_ZONE_LOOKUP = "https://webservices.autotask.net/atservicesrest"
API_VERSION = "v1.0"
CACHE_TTL_S = 3600.0
PREFERRED_LABEL = "internal"
FIND_MAX_RECORDS = 50


@dataclass(frozen=True)
class _Tenant:
    zone_url: str  # ends with /v1.0
    note_type: int
    publish: int
    fetched_at: float


_tenants: dict[uuid.UUID, _Tenant] = {}


def headers(connection: PsaConnectionInfo, member_id: str | None = None) -> dict[str, str]:
    found = {
        "ApiIntegrationCode": credential(connection, "integration_code"),
        "UserName": credential(connection, "username"),
        "Secret": credential(connection, "secret"),
    }
    if member_id:
        found["ImpersonationResourceId"] = member_id
    return found


def pick(field: dict[str, Any]) -> int:
    """An active picklist value: one labelled internal, else the default, else the first."""
    values = [v for v in field.get("picklistValues") or [] if isinstance(v, dict) and v.get("isActive", True)]
    if not values:
        # Not the field's name as the PSA spelt it: nothing of an answer goes into an error.
        raise PsaError("Autotask note fields: a picklist has no active value", permanent=True)
    chosen = (
        next((v for v in values if PREFERRED_LABEL in str(v.get("label", "")).lower()), None)
        or next((v for v in values if v.get("isDefaultValue")), None)
        or values[0]
    )
    return int(chosen["value"])


async def _tenant(connection: PsaConnectionInfo) -> _Tenant:
    cached = _tenants.get(connection.id)
    if cached is not None and time.monotonic() - cached.fetched_at < CACHE_TTL_S:
        return cached
    lookup = (connection.base_url or DEFAULT_ZONE_LOOKUP).rstrip("/")
    response = await call(
        "GET",
        f"{lookup}/{API_VERSION}/zoneInformation",
        what="Autotask zone lookup",
        params={"user": credential(connection, "username")},
        headers=headers(connection),
    )
    check(response, "Autotask zone lookup")
    zone = json_body(response, "Autotask zone lookup")
    zone_root = zone.get("url") if isinstance(zone, dict) else None
    if not isinstance(zone_root, str) or not zone_root:
        raise PsaError("Autotask zone lookup: the answer has no 'url'")
    zone_url = f"{zone_root.rstrip('/')}/{API_VERSION}"

    response = await call(
        "GET",
        f"{zone_url}/TicketNotes/entityInformation/fields",
        what="Autotask note fields",
        headers=headers(connection),
    )
    check(response, "Autotask note fields")
    fields = json_body(response, "Autotask note fields")
    by_name = {
        str(f.get("name", "")).lower(): f
        for f in (fields.get("fields") if isinstance(fields, dict) else None) or []
        if isinstance(f, dict)
    }
    for needed in ("notetype", "publish"):
        if needed not in by_name:
            raise PsaError(f"Autotask note fields lack {needed!r}", permanent=True)
    tenant = _Tenant(zone_url, pick(by_name["notetype"]), pick(by_name["publish"]), time.monotonic())
    _tenants[connection.id] = tenant
    return tenant


class Autotask:
    kind = "autotask"

    async def add_note(self, connection: PsaConnectionInfo, note: Note) -> str:
        ticket = numeric_ticket_id(connection, note.ticket_id)
        tenant = await _tenant(connection)
        response = await call(
            "POST",
            f"{tenant.zone_url}/Tickets/{ticket}/Notes",
            what="Autotask note",
            json={
                "ticketID": ticket,
                "title": note.title[:NOTE_TITLE_MAX_CHARS],
                "description": note.text[:NOTE_TEXT_MAX_CHARS],
                "noteType": tenant.note_type,
                "publish": tenant.publish,
            },
            headers=headers(connection, note.member_id),
        )
        check(response, "Autotask note")
        return note_id_from(json_body(response, "Autotask note"), "itemId", "Autotask note")

    async def find_note(self, connection: PsaConnectionInfo, ticket_id: str, marker: str) -> str | None:
        ticket = numeric_ticket_id(connection, ticket_id)
        tenant = await _tenant(connection)
        search = {
            "MaxRecords": FIND_MAX_RECORDS,
            "filter": [
                {"op": "eq", "field": "ticketID", "value": ticket},
                {"op": "contains", "field": "description", "value": marker},
            ],
        }
        response = await call(
            "GET",
            f"{tenant.zone_url}/TicketNotes/query",
            what="Autotask note query",
            params={"search": json.dumps(search)},
            headers=headers(connection),
        )
        check(response, "Autotask note query")
        found = json_body(response, "Autotask note query")
        items = found.get("items") if isinstance(found, dict) else None
        for item in items or []:
            if isinstance(item, dict) and item.get("id") is not None:
                return str(item["id"])
        return None
