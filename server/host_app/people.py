"""``PUT /users/{id}`` and ``PUT /teams/{id}``: the host app's people, as it sees them."""

from __future__ import annotations

import uuid

import msgspec

from server.host_app.upsert import CREATED, require_in_account, upsert_in_account
from server.schemas.host_app import TeamOut, TeamPut, UserOut, UserPut
from tables import db

UPSERT_USER = f"""
INSERT INTO users (id, account_id, team_id, email, name, account_role, is_active, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())
ON CONFLICT (id) DO UPDATE
SET team_id = EXCLUDED.team_id, email = EXCLUDED.email, name = EXCLUDED.name,
    account_role = EXCLUDED.account_role, is_active = EXCLUDED.is_active, updated_at = now()
WHERE users.account_id = EXCLUDED.account_id
RETURNING {CREATED}, id, team_id, email, name, account_role, is_active, created_at, updated_at
"""

UPSERT_TEAM = f"""
INSERT INTO teams (id, account_id, name, created_at, updated_at)
VALUES ($1, $2, $3, now(), now())
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, updated_at = now()
WHERE teams.account_id = EXCLUDED.account_id
RETURNING {CREATED}, id, name, created_at, updated_at
"""


async def put_user(account_id: uuid.UUID, user_id: uuid.UUID, body: UserPut) -> tuple[UserOut, bool]:
    """(the user, created?). Deactivating (``is_active: false``) locks the user out at
    once: every request reloads its user."""
    async with db.transaction() as conn:
        await require_in_account(conn, "teams", body.team_id, account_id, field="team_id")
        row, created = await upsert_in_account(
            conn,
            UPSERT_USER,
            user_id,
            account_id,
            body.team_id,
            body.email,
            body.name,
            body.account_role,
            body.is_active,
            what="User",
        )
    return msgspec.convert(dict(row), UserOut), created


async def put_team(account_id: uuid.UUID, team_id: uuid.UUID, body: TeamPut) -> tuple[TeamOut, bool]:
    async with db.connection() as conn:
        row, created = await upsert_in_account(conn, UPSERT_TEAM, team_id, account_id, body.name, what="Team")
    return msgspec.convert(dict(row), TeamOut), created
