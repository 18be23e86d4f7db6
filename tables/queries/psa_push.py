"""A hand-off's PSA note: the connection it goes through, and the push's result kept on
the hand-off (``psa_note_pushed``, ``psa_note_id``, ``psa_push_status``, ``psa_push_error``,
``member_mapping_warning``). Written by ``actors/psa/push.py`` in the workers and, inline,
in the web (``server/handoffs/psa.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from tables import db
from tables.handoffs import SessionHandoff
from tables.integrations import PsaConnection
from tables.queries.clock import now


class PsaConnectionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    base_url: str
    credentials: dict[str, Any]  # a secret
    member_mapping: dict[str, Any]


class PushResultRecord(msgspec.Struct, frozen=True, kw_only=True):
    psa_push_status: str | None
    psa_push_error: str | None
    member_mapping_warning: str | None
    psa_note_id: str | None


async def psa_connection(*, connection_id: uuid.UUID, account_id: uuid.UUID) -> PsaConnectionRecord | None:
    """The connection, scoped to ``account_id``: a session naming another account's
    connection is treated as having none."""
    rows = await db.run(
        PsaConnection.select(
            PsaConnection.id,
            PsaConnection.kind,
            PsaConnection.base_url,
            PsaConnection.credentials,
            PsaConnection.member_mapping,
        )
        .where(PsaConnection.id == connection_id, PsaConnection.account_id == account_id)
        .output(load_json=True)
    )
    if not rows:
        return None
    row = rows[0]
    return PsaConnectionRecord(
        id=row["id"],
        kind=row["kind"],
        base_url=row["base_url"],
        credentials=row["credentials"] if isinstance(row["credentials"], dict) else {},
        member_mapping=row["member_mapping"] if isinstance(row["member_mapping"], dict) else {},
    )


def _update(values: dict[Any, Any]) -> Any:
    # ``updated_at`` from the database's clock; Piccolo's auto_update would take ours.
    return SessionHandoff.update({**values, SessionHandoff.updated_at: now()}, use_auto_update=False)


async def record_no_psa(*, handoff_id: uuid.UUID) -> None:
    """Nothing to push to; never over a note already pushed."""
    await db.run(
        _update(
            {
                SessionHandoff.psa_push_status: "no_psa",
                SessionHandoff.psa_push_error: None,
                SessionHandoff.member_mapping_warning: None,
            }
        ).where(SessionHandoff.id == handoff_id, SessionHandoff.psa_note_pushed.eq(False))
    )


async def record_pushed(*, handoff_id: uuid.UUID, note_id: str, warning: str | None) -> None:
    await db.run(
        _update(
            {
                SessionHandoff.psa_note_pushed: True,
                SessionHandoff.psa_note_id: note_id,
                SessionHandoff.psa_push_status: "pushed",
                SessionHandoff.psa_push_error: None,
                SessionHandoff.member_mapping_warning: warning,
            }
        ).where(SessionHandoff.id == handoff_id)
    )


async def record_failed(*, handoff_id: uuid.UUID, error: str | None, warning: str | None) -> None:
    """Failed (``error``: the delivery's sanitized last error); never over a note pushed."""
    await db.run(
        _update(
            {
                SessionHandoff.psa_push_status: "failed",
                SessionHandoff.psa_push_error: error,
                SessionHandoff.member_mapping_warning: warning,
            }
        ).where(SessionHandoff.id == handoff_id, SessionHandoff.psa_note_pushed.eq(False))
    )


async def push_result(*, handoff_id: uuid.UUID) -> PushResultRecord | None:
    rows = await db.run(
        SessionHandoff.select(
            SessionHandoff.psa_push_status,
            SessionHandoff.psa_push_error,
            SessionHandoff.member_mapping_warning,
            SessionHandoff.psa_note_id,
        ).where(SessionHandoff.id == handoff_id)
    )
    return msgspec.convert(rows[0], PushResultRecord) if rows else None
