"""ConnectWise Manage (PSA): ticket notes through the REST API 3.0.

``POST {site}/v4_6_release/apis/3.0/service/tickets/{id}/notes`` with the ``clientId``
header and Basic auth ``{company}+{public key}:{private key}``. The note is an internal
analysis note, attributed to the mapped member when there is one.

Credentials: ``company_id``, ``public_key``, ``private_key``, ``client_id``. ``base_url``
is the site (``https://api-na.myconnectwise.net``) or the full API root.
"""

from __future__ import annotations

import base64

from actors.http import call
from actors.psa.base import (
    NOTE_TEXT_MAX_CHARS,
    Note,
    PsaConnectionInfo,
    check,
    credential,
    json_body,
    note_id_from,
    numeric_ticket_id,
)

API_ROOT = "/v4_6_release/apis/3.0"
API_MARKER = "/apis/3.0"
ACCEPT = "application/vnd.connectwise.com+json; version=2022.1"
FIND_PAGE_SIZE = 100


def api_root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if API_MARKER in base else base + API_ROOT


def headers(connection: PsaConnectionInfo) -> dict[str, str]:
    login = (
        f"{credential(connection, 'company_id')}+{credential(connection, 'public_key')}"
        f":{credential(connection, 'private_key')}"
    )
    return {
        "Authorization": "Basic " + base64.b64encode(login.encode()).decode(),
        "clientId": credential(connection, "client_id"),
        "Accept": ACCEPT,
    }


class ConnectWise:
    kind = "connectwise"

    async def add_note(self, connection: PsaConnectionInfo, note: Note) -> str:
        ticket = numeric_ticket_id(connection, note.ticket_id)
        body: dict[str, object] = {
            "text": note.text[:NOTE_TEXT_MAX_CHARS],
            "detailDescriptionFlag": False,
            "internalAnalysisFlag": True,
            "resolutionFlag": False,
        }
        if note.member_id:
            body["member"] = {"identifier": note.member_id}
        response = await call(
            "POST",
            f"{api_root(connection.base_url)}/service/tickets/{ticket}/notes",
            what="ConnectWise note",
            json=body,
            headers=headers(connection),
        )
        check(response, "ConnectWise note")
        return note_id_from(json_body(response, "ConnectWise note"), "id", "ConnectWise note")

    async def find_note(self, connection: PsaConnectionInfo, ticket_id: str, marker: str) -> str | None:
        ticket = numeric_ticket_id(connection, ticket_id)
        response = await call(
            "GET",
            f"{api_root(connection.base_url)}/service/tickets/{ticket}/notes",
            what="ConnectWise notes",
            params={"orderBy": "id desc", "pageSize": FIND_PAGE_SIZE},
            headers=headers(connection),
        )
        check(response, "ConnectWise notes")
        notes = json_body(response, "ConnectWise notes")
        for found in notes if isinstance(notes, list) else []:
            if isinstance(found, dict) and marker in str(found.get("text", "")):
                return str(found.get("id"))
        return None
