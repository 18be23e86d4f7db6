"""An account's people (``users``, ``teams``): who a request's token stands for, who may
still listen to the inbox, and the host app's writes of them.

A user is eligible (may act, be notified, be targeted, claim) when ``is_active`` and
``deleted_at`` is NULL: ``ELIGIBLE`` says it once for the builder, the SQL below spells
it out.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from piccolo.columns import Column

from tables import db
from tables.accounts import Team, User
from tables.enums import Role
from tables.queries.tenancy import upsert_in_account

# The unique index of (account_id, slack_user_id) (migration 2026-12-04T20:00).
SLACK_USER_ID_UNIQUE = "users_slack_user_id_per_account"

ELIGIBLE = (User.is_active == True) & User.deleted_at.is_null()  # noqa: E712 (a Piccolo expression)

# Every user request reads its user (so a deactivation locks out at once): SQL, since
# every request pays it (the builder would add ~0.2-0.3 ms to each; tables/queries/__init__.py).
USER_FOR_REQUEST = """
SELECT account_id, name, account_role
FROM users
WHERE id = $1 AND is_active AND deleted_at IS NULL
"""


class RequestUser(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    name: str
    account_role: Role


async def user_for_request(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> RequestUser | None:
    """The eligible user ``user_id``; None when unknown, inactive or deleted."""
    record = await conn.fetchrow(USER_FOR_REQUEST, user_id)
    return None if record is None else msgspec.convert(dict(record), RequestUser)


async def eligible_user_ids(*, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``user_ids`` are still eligible (the inbox guard's poll, every 2 s)."""
    ids = list(user_ids)
    if not ids:
        return set()
    rows = await db.run(User.select(User.id).where(User.id.is_in(ids), ELIGIBLE))
    return {row["id"] for row in rows}


class UserState(enum.Enum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "inactive or deleted"
    UNKNOWN = "unknown"


async def user_state(*, user_id: uuid.UUID) -> UserState:
    """For ``baton token``: awaited as is (no ``db.run``), the CLI has no pool."""
    row = await User.select(User.is_active, User.deleted_at).where(User.id == user_id).first()
    if row is None:
        return UserState.UNKNOWN
    if not row["is_active"] or row["deleted_at"] is not None:
        return UserState.INELIGIBLE
    return UserState.ELIGIBLE


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    email: str
    name: str
    account_role: Role
    team_id: uuid.UUID | None
    is_active: bool
    slack_user_id: str | None
    created_at: datetime
    updated_at: datetime


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


async def upsert_user(
    *,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    email: str,
    name: str,
    account_role: Role,
    team_id: uuid.UUID | None,
    is_active: bool,
    slack_user_id: str | msgspec.UnsetType | None = msgspec.UNSET,
) -> tuple[UserRecord, bool] | None:
    """(the user, created?); None when ``user_id`` is another account's. ``slack_user_id``
    UNSET keeps the stored one; another user of the account holding it raises
    ``asyncpg.UniqueViolationError`` on ``SLACK_USER_ID_UNIQUE``."""
    values: dict[Column, Any] = {
        User.email: email,
        User.name: name,
        User.account_role: account_role,
        User.team_id: team_id,
        User.is_active: is_active,
    }
    if slack_user_id is not msgspec.UNSET:
        values[User.slack_user_id] = slack_user_id
    written = await upsert_in_account(
        User,
        row_id=user_id,
        account_id=account_id,
        values=values,
        returning=[getattr(User, name) for name in UserRecord.__struct_fields__],
    )
    if written is None:
        return None
    row, created = written
    return msgspec.convert(row, UserRecord), created


async def upsert_team(
    *, account_id: uuid.UUID, team_id: uuid.UUID, name: str
) -> tuple[TeamRecord, bool] | None:
    """(the team, created?); None when ``team_id`` is another account's."""
    written = await upsert_in_account(
        Team,
        row_id=team_id,
        account_id=account_id,
        values={Team.name: name},
        returning=[getattr(Team, name) for name in TeamRecord.__struct_fields__],
    )
    if written is None:
        return None
    row, created = written
    return msgspec.convert(row, TeamRecord), created


class LinkRecipient(msgspec.Struct, frozen=True, kw_only=True):
    """The user a pick-up link names, eligible or not (the page says which)."""

    account_id: uuid.UUID
    name: str
    account_role: Role
    is_active: bool
    deleted_at: datetime | None

    @property
    def eligible(self) -> bool:
        return self.is_active and self.deleted_at is None


async def link_recipient(*, user_id: uuid.UUID) -> LinkRecipient | None:
    """The user ``user_id`` whatever their state; None when there is none."""
    row = await db.run(
        User.select(User.account_id, User.name, User.account_role, User.is_active, User.deleted_at)
        .where(User.id == user_id)
        .first()
    )
    return None if row is None else msgspec.convert(row, LinkRecipient)


class SlackPresser(msgspec.Struct, frozen=True, kw_only=True):
    """The Baton user a Slack member id maps to, eligible or not (the answer says why not)."""

    id: uuid.UUID
    name: str
    account_role: Role
    eligible: bool


async def user_of_slack_id(*, account_id: uuid.UUID, slack_user_id: str) -> SlackPresser | None:
    """The user of ``account_id`` whose ``slack_user_id`` it is (unique per account); None
    when nobody's. Off the click path (a Slack press, answered in the background): the builder."""
    rows = await db.run(
        User.select(User.id, User.name, User.account_role, User.is_active, User.deleted_at).where(
            (User.account_id == account_id) & (User.slack_user_id == slack_user_id)
        )
    )
    if not rows:
        return None
    row = rows[0]
    return SlackPresser(
        id=row["id"],
        name=row["name"],
        account_role=row["account_role"],
        eligible=bool(row["is_active"]) and row["deleted_at"] is None,
    )
