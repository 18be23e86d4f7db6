"""The statements of ``POST /handoffs/{id}/resolve``, all in its one transaction
(``server/handoffs/resolve.py``): lock the hand-off, then its session; record the
outcome; move the session; ring the returned technician's bell and write the ledger
rows of what tells them.

The builder: a resolve is a click, but one per hand-off's life, not the queue's hot
path (tables/queries/__init__.py), and every statement here runs on the transaction's
connection (``tables.db.run`` inside ``db.transaction()``). Which states a resolve
starts from, and what it does to the session, are the state machine's
(tables/states.py): the caller passes them in, so they are said in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from piccolo.columns import Column
from piccolo.query.functions import Lower

from tables import db
from tables.accounts import User
from tables.delivery import AppNotification, Delivery
from tables.enums import HandoffState, Intent, ResolveOutcome
from tables.handoffs import SessionHandoff
from tables.queries.clock import now
from tables.queries.deliveries import OUTCOME, insert_rows
from tables.sessions import AiSession

_h = SessionHandoff


class HeldForResolve(msgspec.Struct, frozen=True, kw_only=True):
    state: HandoffState
    intent: Intent
    handed_off_by: uuid.UUID
    claimed_by: uuid.UUID | None
    session_id: uuid.UUID


async def lock_handoff(*, account_id: uuid.UUID, handoff_id: uuid.UUID) -> HeldForResolve | None:
    """The hand-off of ``account_id``, locked ``FOR UPDATE`` (a concurrent claim, release
    or resolve waits, then sees what this one did); None for a missing one or another
    account's. First in the transaction: a claim also locks the hand-off before its
    session."""
    rows = await db.run(
        _h.select(_h.state, _h.intent, _h.handed_off_by, _h.claimed_by, _h.session_id)
        .where((_h.id == handoff_id) & (_h.account_id == account_id))
        .lock_rows()
    )
    return msgspec.convert(rows[0], HeldForResolve) if rows else None


class SessionOfResolve(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    problem_summary: str | None
    psa_ticket_id: str | None
    psa_connection_id: uuid.UUID | None


async def lock_session(*, session_id: uuid.UUID) -> SessionOfResolve:
    """The hand-off's session, locked: a create (which locks the session first) cannot
    open another hand-off between ``another_in_flight`` and ``move_session``."""
    s = AiSession
    rows = await db.run(
        s.select(s.status, s.problem_summary, s.psa_ticket_id, s.psa_connection_id)
        .where(s.id == session_id)
        .lock_rows()
    )
    return msgspec.convert(rows[0], SessionOfResolve)


async def another_in_flight(
    *, session_id: uuid.UUID, handoff_id: uuid.UUID, states: Sequence[HandoffState]
) -> bool:
    """Whether another hand-off of the session is in one of ``states`` (open or claimed:
    the session is that one's now, so resolving this one leaves the session alone)."""
    found: bool = await db.run(
        _h.exists().where(
            (_h.session_id == session_id) & (_h.id != handoff_id) & _h.state.is_in(list(states))
        )
    )
    return found


async def mark_resolved(
    *,
    handoff_id: uuid.UUID,
    from_states: Sequence[HandoffState],
    target: HandoffState,
    outcome: ResolveOutcome,
    note: str | None,
    resolved_by: uuid.UUID,
) -> bool:
    """The hand-off moved to ``target`` with its resolution, if it is still in one of
    ``from_states`` (the caller holds its lock, so it is); False otherwise. The tier
    engine fires open hand-offs only: a resolved one's schedule simply stops."""
    rows = await db.run(
        _h.update(
            {
                _h.state: target,
                _h.resolution_outcome: outcome,
                _h.resolution_note: note,
                _h.resolved_by: resolved_by,
                _h.resolved_at: now(),
                _h.updated_at: now(),  # the database's clock, not Piccolo's auto_update
            },
            use_auto_update=False,
        )
        .where((_h.id == handoff_id) & _h.state.is_in(list(from_states)))
        .returning(_h.id)
    )
    return bool(rows)


async def move_session(*, session_id: uuid.UUID, status: str, give_back_to: uuid.UUID | None) -> None:
    """The session's new ``status``; with ``give_back_to``, back in that user's hands
    (``escalated_to_id``) too."""
    s = AiSession
    values: dict[Column | str, Any] = {s.status: status, s.updated_at: now()}
    if give_back_to is not None:
        values[s.escalated_to_id] = give_back_to
    await db.run(s.update(values, use_auto_update=False).where(s.id == session_id))


async def eligible_email(*, account_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The user's address (lower-cased, as every recipient is; ``""`` without one) while
    they are an eligible user of the account (active, not deleted); None otherwise."""
    rows = await db.run(
        User.select(Lower(User.email, alias="email")).where(
            (User.id == user_id)
            & (User.account_id == account_id)
            & User.is_active.eq(True)
            & User.deleted_at.is_null()
        )
    )
    return str(rows[0]["email"] or "") if rows else None


async def ring_outcome_bell(
    *,
    account_id: uuid.UUID,
    handoff_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
) -> None:
    """One bell row for ``user_id``, and its ``bell`` delivery (purpose ``outcome``),
    ``sent`` at birth as the create's are: the row is the delivery."""
    await db.run(
        AppNotification.insert(
            AppNotification(
                account_id=account_id,
                user_id=user_id,
                kind=kind,
                title=title,
                body=body,
                link=None,
                handoff_id=handoff_id,
                session_id=session_id,
                created_at=now(),
            )
        )
    )
    await db.run(
        Delivery.insert(
            Delivery(
                account_id=account_id,
                handoff_id=handoff_id,
                channel="bell",
                recipient=str(user_id),
                purpose=OUTCOME.purpose,
                release_count=OUTCOME.release_count,
                tier=OUTCOME.tier,
                round=OUTCOME.round,
                status="sent",
                attempts=1,
                sent_at=now(),
                created_at=now(),
                updated_at=now(),
            )
        )
    )


async def write_outcome_email_row(*, account_id: uuid.UUID, handoff_id: uuid.UUID, address: str) -> None:
    """The ``email`` delivery of the outcome (``pending``): what its actor sends, once."""
    await insert_rows(
        account_id=account_id, handoff_id=handoff_id, channel="email", recipients=[address], key=OUTCOME
    )
