"""The reminder's statements: mark a hand-off reminded (raising its priority) and ring
its recipients' bells. Both run in the reminder's one transaction (``actors/reminder.py``),
which also writes the ``reminder`` delivery rows (``tables/queries/deliveries.py``).

Which hand-offs may be reminded, and what a priority raised one step is, are the
reminder's state rules: the caller passes them in, so they are said in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import msgspec
from piccolo.query.functions import Case, When

from tables import db
from tables.delivery import AppNotification
from tables.handoffs import SessionHandoff
from tables.queries.clock import now, seconds_ago
from tables.queries.insert_parts import parts


class Reminded(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    handed_off_by: uuid.UUID
    target_user_id: uuid.UUID | None
    session_id: uuid.UUID
    priority: str  # raised


async def mark_reminded(
    *,
    handoff_id: uuid.UUID,
    remind_after_s: float,
    intent: str,
    from_state: str,
    raised_priority: Mapping[str, str],
) -> Reminded | None:
    """``reminded_at`` now and the priority raised (``raised_priority``: each priority's
    next one), if the hand-off is an unclaimed ``intent`` in ``from_state``, never
    reminded, and at least ``remind_after_s`` old; None otherwise (too early, claimed,
    reminded already)."""
    raise_one_step = Case(
        *(When(SessionHandoff.priority == low, then=high) for low, high in raised_priority.items()),
        default=SessionHandoff.priority,
    )
    rows = await db.run(
        SessionHandoff.update(
            {
                SessionHandoff.reminded_at: now(),
                SessionHandoff.priority: raise_one_step,
                SessionHandoff.updated_at: now(),  # the database's clock, not Piccolo's auto_update
            },
            use_auto_update=False,
        )
        .where(
            SessionHandoff.id == handoff_id,
            SessionHandoff.intent == intent,
            SessionHandoff.state == from_state,
            SessionHandoff.claimed_by.is_null(),
            SessionHandoff.reminded_at.is_null(),
            SessionHandoff.created_at <= seconds_ago(remind_after_s),
        )
        .returning(
            SessionHandoff.account_id,
            SessionHandoff.handed_off_by,
            SessionHandoff.target_user_id,
            SessionHandoff.session_id,
            SessionHandoff.priority,
        )
    )
    return msgspec.convert(rows[0], Reminded) if rows else None


async def ring_bells(
    *,
    account_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
    handoff_id: uuid.UUID,
    session_id: uuid.UUID,
    user_ids: list[uuid.UUID],
) -> None:
    """One bell row per user. On the current transaction when there is one."""
    for part in parts(user_ids):
        await db.run(
            AppNotification.insert(
                *(
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
                    for user_id in part
                )
            )
        )
