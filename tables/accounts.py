"""Tenants and their people: accounts, teams, users."""

from piccolo.columns import UUID, Boolean, ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from tables._columns import created_at, one_of, updated_at
from tables.enums import ROLES
from tables.limits import EMAIL_MAX, ENUM_MAX, NAME_MAX, SLACK_USER_ID_MAX


class Account(Table, tablename="accounts"):
    """One MSP. Every other row belongs to exactly one account."""

    id = UUID(primary_key=True)
    name = Varchar(length=NAME_MAX)
    created_at = created_at()
    # Service-token rotation (server/auth.py): the current token's jti (NULL: none named
    # yet, every token signed for the account works), and the one the last rotation
    # replaced, accepted until its grace ends (NULL jti: tokens from before it).
    service_token_jti = UUID(null=True, default=None)
    previous_service_token_jti = UUID(null=True, default=None)
    previous_service_token_valid_until = Timestamptz(null=True, default=None)


class Team(Table, tablename="teams"):
    """A group of users; the host app chooses the id (PUT /teams/{id})."""

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=NAME_MAX)
    created_at = created_at()
    updated_at = updated_at()


class User(Table, tablename="users"):
    """A person of an account; the host app chooses the id (PUT /users/{id}).

    Eligible (may be notified, targeted, claim) when ``is_active`` and ``deleted_at`` is
    NULL. Users are soft-deleted so hand-offs keep naming who did what.
    """

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade, index=True)
    team_id = ForeignKey(Team, null=True, on_delete=OnDelete.set_null, index=True)
    email = Varchar(length=EMAIL_MAX)
    name = Varchar(length=NAME_MAX)
    account_role = Varchar(length=ENUM_MAX, default="technician")
    is_active = Boolean(default=True)
    deleted_at = Timestamptz(null=True, default=None)
    # The user's Slack member id (e.g. "U024BE7LH"): who pressed Pick up in Slack. Unique
    # within the account (migration 2026-12-04T20:00), so a press maps to one person.
    slack_user_id = Varchar(length=SLACK_USER_ID_MAX, null=True, default=None)
    created_at = created_at()
    updated_at = updated_at()

    users_account_role_check = one_of("account_role", ROLES)
