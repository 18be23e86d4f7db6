"""The queue: an account's open hand-offs, newest first, one keyset page at a time.

Keyset on (created_at, id) rather than offset: cards arrive and leave all the time, and
an offset would skip or repeat them. Each filter combination has its own literal SQL,
so Postgres uses the partial indexes of open hand-offs instead of a plan that fits every
combination badly; the eight are written out once, at import (``PAGES``). The click
path (the inbox reads it on every card change): SQL, for the reason in
tables/queries/__init__.py.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any, Final

import msgspec

from tables import db
from tables.enums import Intent, Priority

# The SLA's order: soonest claim_due_at first, hand-offs without one last (by age).
DUE_KEY = "COALESCE(h.claim_due_at, 'infinity'::timestamptz)"

SELECT_OPEN = f"""
SELECT h.id AS handoff_id, h.session_id, h.intent, s.problem_summary, s.problem_domain,
       h.priority, h.engineer_notes, h.created_at,
       h.policy_id, h.claim_due_at, h.breached_at, h.last_tier, h.reminded_at, {DUE_KEY} AS due_key
FROM session_handoffs AS h
JOIN ai_sessions AS s ON s.id = h.session_id
WHERE h.account_id = $1 AND h.state = 'open'
"""


def _page_sql(*, by_team: bool, by_intent: bool, after: bool, by_due: bool = False) -> str:
    sql, n = SELECT_OPEN, 1

    def arg() -> str:
        nonlocal n
        n += 1
        return f"${n}"

    if by_team:
        sql += f" AND h.team_id = {arg()}"
    if by_intent:
        sql += f" AND h.intent = {arg()}"
    if by_due:
        if after:
            sql += f" AND ({DUE_KEY}, h.created_at, h.id) > ({arg()}, {arg()}, {arg()})"
        return sql + f" ORDER BY {DUE_KEY}, h.created_at, h.id LIMIT {arg()}"
    if after:
        sql += f" AND (h.created_at, h.id) < ({arg()}, {arg()})"
    return sql + f" ORDER BY h.created_at DESC, h.id DESC LIMIT {arg()}"


# (by team, by intent, after a cursor, by due time) -> the statement.
PAGES: Final[dict[tuple[bool, bool, bool, bool], str]] = {
    (team, intent, after, due): _page_sql(by_team=team, by_intent=intent, after=after, by_due=due)
    for team, intent, after, due in itertools.product((False, True), repeat=4)
}


class QueueRow(msgspec.Struct, frozen=True, kw_only=True):
    handoff_id: uuid.UUID
    session_id: uuid.UUID
    intent: Intent
    problem_summary: str | None
    problem_domain: str | None
    priority: Priority
    engineer_notes: str | None
    created_at: datetime
    policy_id: uuid.UUID | None
    claim_due_at: datetime | None
    breached_at: datetime | None
    last_tier: dict[str, Any] | None
    reminded_at: datetime | None
    due_key: datetime  # claim_due_at, or infinity (datetime.max) without one


async def open_handoffs(
    *,
    account_id: uuid.UUID,
    team_id: uuid.UUID | None,
    intent: Intent | None,
    after: tuple[datetime, datetime, uuid.UUID] | tuple[datetime, uuid.UUID] | None,
    limit: int,
    by_due: bool = False,
) -> list[QueueRow]:
    """At most ``limit`` open hand-offs after the cursor ``after``: newest first,
    (created_at, id); ``by_due``: soonest due first, (due_key, created_at, id)."""
    args: list[object] = [account_id]
    if team_id is not None:
        args.append(team_id)
    if intent is not None:
        args.append(intent)
    if after is not None:
        args.extend(after)
    args.append(limit)
    sql = PAGES[(team_id is not None, intent is not None, after is not None, by_due)]
    records = await db.fetch(sql, *args)
    rows = []
    for record in records:
        fields = dict(record)
        fields["last_tier"] = db.load_json(fields["last_tier"])
        rows.append(msgspec.convert(fields, QueueRow))
    return rows
