"""``PUT /users/{id}`` and ``PUT /teams/{id}``: the host app's people, as it sees them."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from server.host_app.upsert import not_found, require_in_account
from server.problems import Problem
from server.schemas.host_app import TeamOut, TeamPut, UserOut, UserPut
from tables import db
from tables.queries import people


async def put_user(account_id: uuid.UUID, user_id: uuid.UUID, body: UserPut) -> tuple[UserOut, bool]:
    """(the user, created?). Deactivating (``is_active: false``) locks the user out at
    once: every request reloads its user. A ``slack_user_id`` another user of the account
    holds is 409 naming the field (a press must map to one person), and nothing is written."""
    try:
        async with db.transaction():
            await require_in_account("teams", body.team_id, account_id, field="team_id")
            written = await people.upsert_user(
                account_id=account_id,
                user_id=user_id,
                email=body.email,
                name=body.name,
                account_role=body.account_role,
                team_id=body.team_id,
                is_active=body.is_active,
                slack_user_id=body.slack_user_id,
            )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != people.SLACK_USER_ID_UNIQUE:
            raise
        raise Problem(
            409, f"slack_user_id {body.slack_user_id} is already another user's in this account."
        ) from None
    if written is None:
        raise not_found("User")
    user, created = written
    return msgspec.convert(user, UserOut, from_attributes=True), created


async def put_team(account_id: uuid.UUID, team_id: uuid.UUID, body: TeamPut) -> tuple[TeamOut, bool]:
    written = await people.upsert_team(account_id=account_id, team_id=team_id, name=body.name)
    if written is None:
        raise not_found("Team")
    team, created = written
    return msgspec.convert(team, TeamOut, from_attributes=True), created
