"""What every PSA adapter gets and gives: a connection, a note, a note id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from actors.deliveries import SendError
from actors.http import is_permanent, status_line

NOTE_TEXT_MAX_CHARS = 30_000  # below every PSA's note limit (Autotask: 32,000)
NOTE_TITLE_MAX_CHARS = 250


@dataclass(frozen=True)
class PsaConnectionInfo:
    id: uuid.UUID
    kind: str
    base_url: str
    credentials: dict[str, Any]
    member_mapping: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Note:
    ticket_id: str
    title: str
    text: str
    marker: str  # a line of ``text`` that names the hand-off: how find_note knows it
    member_id: str | None  # the PSA member to attribute the note to, when mapped


class PsaError(SendError):
    """A PSA call failed; ``permanent`` when the same call cannot succeed later."""


class Adapter(Protocol):
    kind: str

    async def add_note(self, connection: PsaConnectionInfo, note: Note) -> str:
        """Post the note; returns the PSA's id for it."""
        ...

    async def find_note(self, connection: PsaConnectionInfo, ticket_id: str, marker: str) -> str | None:
        """The id of a note on the ticket whose text holds ``marker``, if there is one."""
        ...


def credential(connection: PsaConnectionInfo, name: str) -> str:
    value = connection.credentials.get(name)
    if not isinstance(value, str) or not value:
        raise PsaError(f"{connection.kind} connection lacks credential {name!r}", permanent=True)
    return value


def numeric_ticket_id(connection: PsaConnectionInfo, ticket_id: str) -> int:
    if not ticket_id.strip().isdigit():
        raise PsaError(f"{connection.kind} ticket id {ticket_id!r} is not a number", permanent=True)
    return int(ticket_id)


def check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    raise PsaError(f"{what}: {status_line(response)}", permanent=is_permanent(response.status_code))


def json_body(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PsaError(f"{what}: the answer is not JSON") from exc


def note_id_from(value: Any, key: str, what: str) -> str:
    found = value.get(key) if isinstance(value, dict) else None
    if found is None or found == "":
        raise PsaError(f"{what}: the answer has no {key!r}")
    return str(found)
