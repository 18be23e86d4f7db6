"""An account's escalation policies (``escalation_policies``): the API's writes and reads,
and ``policy_for``, the lookup a hand-off makes of the policy it follows.

The builder throughout: the API is off the click path, and ``policy_for`` is one
statement by an indexed key. The JSONB columns hold ``tables.policy_shapes``' structs,
encoded by msgspec here and decoded back into them (they arrive as text on Piccolo's
pool: tables/db.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import msgspec
from piccolo.querystring import QueryString

from tables import db
from tables.policies import EscalationPolicy
from tables.policy_shapes import BusinessHours, PolicyCopy, PolicyPut, SlaClaim, Tier
from tables.queries.tenancy import upsert_in_account

# The migration's unique index on (account_id, COALESCE(team_id, nil uuid)).
ONE_PER_TEAM_INDEX: Final = "escalation_policies_one_per_team"

_JSON_COLUMNS: Final = ("tiers", "sla_claim_s", "business_hours")


class PolicyRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    team_id: uuid.UUID | None
    tiers: list[Tier]
    repeat: int
    sla_claim_s: SlaClaim | None
    business_hours: BusinessHours | None
    created_at: datetime
    updated_at: datetime


_P = EscalationPolicy
_RECORD_COLUMNS: Final = [getattr(_P, name) for name in PolicyRecord.__struct_fields__]
_COPY_COLUMNS: Final = [getattr(_P, name) for name in PolicyCopy.__struct_fields__]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    fields = dict(row)
    for name in _JSON_COLUMNS:
        if name in fields and isinstance(fields[name], str):
            fields[name] = db.load_json(fields[name])
    return fields


def _record(row: dict[str, Any]) -> PolicyRecord:
    return msgspec.convert(_decoded(row), PolicyRecord)


def _json_or_null(value: msgspec.Struct | None) -> str | None:
    return None if value is None else db.dump_json(value)


async def upsert_policy(
    *, account_id: uuid.UUID, policy_id: uuid.UUID, body: PolicyPut
) -> tuple[PolicyRecord, bool] | None:
    """(the policy, created?); None when ``policy_id`` is another account's. A second
    policy for the same (account, team) raises the UniqueViolation of ``ONE_PER_TEAM_INDEX``."""
    written = await upsert_in_account(
        _P,
        row_id=policy_id,
        account_id=account_id,
        values={
            _P.name: body.name,
            _P.team_id: body.team_id,
            _P.tiers: db.dump_json(body.tiers),
            _P.repeat: body.repeat,
            _P.sla_claim_s: _json_or_null(body.sla_claim_s),
            _P.business_hours: _json_or_null(body.business_hours),
        },
        returning=_RECORD_COLUMNS,
    )
    if written is None:
        return None
    row, created = written
    return _record(row), created


async def get_policy(*, account_id: uuid.UUID, policy_id: uuid.UUID) -> PolicyRecord | None:
    rows = await db.run(
        _P.select(*_RECORD_COLUMNS).where((_P.id == policy_id) & (_P.account_id == account_id))
    )
    return _record(rows[0]) if rows else None


async def list_policies(*, account_id: uuid.UUID) -> list[PolicyRecord]:
    """The account's policies by name (then id, so equal names keep one order)."""
    rows = await db.run(
        _P.select(*_RECORD_COLUMNS).where(_P.account_id == account_id).order_by(_P.name, _P.id)
    )
    return [_record(row) for row in rows]


async def delete_policy(*, account_id: uuid.UUID, policy_id: uuid.UUID) -> bool:
    """Whether a policy of the account was deleted. Hand-offs keep their copy of it."""
    rows = await db.run(
        _P.delete().where((_P.id == policy_id) & (_P.account_id == account_id)).returning(_P.id)
    )
    return bool(rows)


def _team_or_default(team_id: uuid.UUID | None) -> Any:
    # Piccolo turns ``== None`` into IS NULL, but the account default is said explicitly.
    if team_id is None:
        return _P.team_id.is_null()
    return (_P.team_id == team_id) | _P.team_id.is_null()


async def policy_id_for_team(*, account_id: uuid.UUID, team_id: uuid.UUID | None) -> uuid.UUID | None:
    """The id of the account's policy for exactly ``team_id`` (None: the account default)."""
    team = _P.team_id.is_null() if team_id is None else _P.team_id == team_id
    rows = await db.run(_P.select(_P.id).where((_P.account_id == account_id) & team))
    return rows[0]["id"] if rows else None


async def policy_for(*, account_id: uuid.UUID, team_id: uuid.UUID | None) -> PolicyCopy | None:
    """What a hand-off of a session in ``team_id`` follows: the team's policy, else the
    account default (``team_id`` NULL), else None (the built-in default, the engine's).

    One statement: both candidates, the team's first (``team_id IS NULL`` is false for
    it), at most one row. The unique index guarantees at most one of each.
    """
    rows = await db.run(
        _P.select(*_COPY_COLUMNS)
        .where((_P.account_id == account_id) & _team_or_default(team_id))
        .order_by(QueryString("team_id IS NULL"))
        .limit(1)
    )
    return msgspec.convert(_decoded(rows[0]), PolicyCopy) if rows else None
