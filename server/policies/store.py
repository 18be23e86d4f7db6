"""``PUT``, ``GET`` and ``DELETE /escalation-policies``: validation, then one write.

A ``PUT`` is checked whole before anything is written (server/policies/validate.py: 422
naming the field); an id of another account is 404, never overwritten (the upsert's
update names the account: tables/queries/tenancy.py). One policy per (account, team):
the unique index referees a race, and its violation is answered as 409 naming the
policy that holds the team (``existing_policy_id``).
"""

from __future__ import annotations

import uuid
from typing import Final

import asyncpg
import msgspec

from server.host_app.upsert import not_found
from server.policies.validate import require_valid_policy
from server.problems import Problem
from server.schemas.policies import PoliciesOut, PolicyOut
from tables.policy_shapes import PolicyPut
from tables.queries import policies

WHAT: Final = "Escalation policy"
# A conflicting policy deleted between our write and the look-up of it: one more try.
PUT_ATTEMPTS: Final = 2


def _out(record: policies.PolicyRecord) -> PolicyOut:
    return msgspec.convert(record, PolicyOut, from_attributes=True)


def _one_per_team(team_id: uuid.UUID | None, existing_id: uuid.UUID) -> Problem:
    holder = "the account's default policy" if team_id is None else f"the policy of team {team_id}"
    return Problem(
        409,
        f"Policy {existing_id} is already {holder}; an account has one policy per team "
        "(PUT that one, or DELETE it first).",
        existing_policy_id=str(existing_id),
    )


async def put_policy(account_id: uuid.UUID, policy_id: uuid.UUID, body: PolicyPut) -> tuple[PolicyOut, bool]:
    """(the policy, created?)."""
    await require_valid_policy(account_id, body)
    for _ in range(PUT_ATTEMPTS):
        try:
            written = await policies.upsert_policy(account_id=account_id, policy_id=policy_id, body=body)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != policies.ONE_PER_TEAM_INDEX:
                raise
            existing_id = await policies.policy_id_for_team(account_id=account_id, team_id=body.team_id)
            if existing_id is not None:
                raise _one_per_team(body.team_id, existing_id) from None
            continue
        if written is None:
            raise not_found(WHAT)
        record, created = written
        return _out(record), created
    raise Problem(409, "Another policy for this team was written and removed meanwhile; try again.")


async def get_policy(account_id: uuid.UUID, policy_id: uuid.UUID) -> PolicyOut:
    record = await policies.get_policy(account_id=account_id, policy_id=policy_id)
    if record is None:
        raise not_found(WHAT)
    return _out(record)


async def list_policies(account_id: uuid.UUID) -> PoliciesOut:
    return PoliciesOut(items=[_out(record) for record in await policies.list_policies(account_id=account_id)])


async def delete_policy(account_id: uuid.UUID, policy_id: uuid.UUID) -> None:
    if not await policies.delete_policy(account_id=account_id, policy_id=policy_id):
        raise not_found(WHAT)
