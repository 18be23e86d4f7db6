"""HaloPSA: ticket notes as private actions.

A client-credentials token (``POST {base}/auth/token``, ``?tenant=`` for hosted tenants),
then ``POST {base}/api/Actions`` with a JSON array of one action: the note, outcome
"Private Note", hidden from the end user, by the mapped agent when there is one.

Credentials: ``client_id``, ``client_secret``, optional ``tenant`` and ``scope`` (``all``).
``base_url`` is the instance root (``https://yourco.halopsa.com``).

Process memory keeps each connection's token until a minute before it expires
(``TOKEN_EARLY_REFRESH_S``); a 401 drops it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from actors.http import call
from actors.psa.base import (
    NOTE_TEXT_MAX_CHARS,
    Note,
    PsaConnectionInfo,
    PsaError,
    check,
    credential,
    json_body,
    note_id_from,
    numeric_ticket_id,
)

PRIVATE_NOTE_OUTCOME = "Private Note"
DEFAULT_SCOPE = "all"
DEFAULT_TOKEN_LIFETIME_S = 3600.0
TOKEN_EARLY_REFRESH_S = 60.0
FIND_COUNT = 100
HTTP_UNAUTHORIZED = 401


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


_tokens: dict[uuid.UUID, _Token] = {}


def root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


async def _token(connection: PsaConnectionInfo) -> str:
    cached = _tokens.get(connection.id)
    if cached is not None and time.monotonic() < cached.expires_at:
        return cached.value
    params = {}
    tenant = connection.credentials.get("tenant")
    if isinstance(tenant, str) and tenant:
        params["tenant"] = tenant
    response = await call(
        "POST",
        f"{root(connection.base_url)}/auth/token",
        what="HaloPSA token",
        params=params,
        data={
            "grant_type": "client_credentials",
            "client_id": credential(connection, "client_id"),
            "client_secret": credential(connection, "client_secret"),
            "scope": str(connection.credentials.get("scope") or DEFAULT_SCOPE),
        },
    )
    check(response, "HaloPSA token")
    body = json_body(response, "HaloPSA token")
    value = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise PsaError("HaloPSA token: the answer has no 'access_token'")
    lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME_S)
    _tokens[connection.id] = _Token(value, time.monotonic() + max(lifetime - TOKEN_EARLY_REFRESH_S, 1.0))
    return value


def _check_authorised(response: httpx.Response, connection: PsaConnectionInfo, what: str) -> None:
    if response.status_code == HTTP_UNAUTHORIZED:
        # Revoked or expired early: the next try fetches a new token.
        _tokens.pop(connection.id, None)
        raise PsaError(f"{what}: HTTP 401 (token refused; a new one is fetched on retry)")
    check(response, what)


class HaloPsa:
    kind = "halopsa"

    async def add_note(self, connection: PsaConnectionInfo, note: Note) -> str:
        ticket = numeric_ticket_id(connection, note.ticket_id)
        action: dict[str, Any] = {
            "ticket_id": ticket,
            "note": note.text[:NOTE_TEXT_MAX_CHARS],
            "outcome": PRIVATE_NOTE_OUTCOME,
            "hiddenfromuser": True,
        }
        if note.member_id:
            action["agent_id"] = int(note.member_id) if note.member_id.isdigit() else note.member_id
        token = await _token(connection)
        response = await call(
            "POST",
            f"{root(connection.base_url)}/api/Actions",
            what="HaloPSA action",
            json=[action],
            headers={"Authorization": f"Bearer {token}"},
        )
        _check_authorised(response, connection, "HaloPSA action")
        created = json_body(response, "HaloPSA action")
        if isinstance(created, list):  # some versions answer with the array they were sent
            created = created[0] if created else None
        return note_id_from(created, "id", "HaloPSA action")

    async def find_note(self, connection: PsaConnectionInfo, ticket_id: str, marker: str) -> str | None:
        ticket = numeric_ticket_id(connection, ticket_id)
        token = await _token(connection)
        response = await call(
            "GET",
            f"{root(connection.base_url)}/api/Actions",
            what="HaloPSA actions",
            params={"ticket_id": ticket, "count": FIND_COUNT},
            headers={"Authorization": f"Bearer {token}"},
        )
        _check_authorised(response, connection, "HaloPSA actions")
        found = json_body(response, "HaloPSA actions")
        actions = found.get("actions") if isinstance(found, dict) else found
        for action in actions if isinstance(actions, list) else []:
            if isinstance(action, dict) and marker in str(action.get("note", "")):
                return str(action.get("id"))
        return None
