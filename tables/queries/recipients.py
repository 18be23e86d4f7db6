"""Who is told about an escalation: the account's eligible seniors (or its target).

Eligible: ``is_active`` and not deleted (SPEC "People and callers"). Addresses are
lower-cased, so one person with two spellings of an address gets one message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions import Lower

from tables import db
from tables.accounts import User


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    email: str


def _eligible(account_id: uuid.UUID) -> tuple[object, ...]:
    return (User.account_id == account_id, User.is_active.eq(True), User.deleted_at.is_null())


async def senior_emails(
    *, account_id: uuid.UUID, roles: Sequence[str], except_user_id: uuid.UUID
) -> list[str]:
    """The distinct addresses of the eligible users of ``roles``, but ``except_user_id``."""
    rows = await db.run(
        User.select(Lower(User.email, alias="email"))
        .distinct()
        .where(
            *_eligible(account_id),  # type: ignore[arg-type]
            User.id != except_user_id,
            User.account_role.is_in(list(roles)),
            User.email != "",
        )
    )
    return [row["email"] for row in rows]


async def reminder_recipients(
    *, account_id: uuid.UUID, target_user_id: uuid.UUID | None, roles: Sequence[str], creator_id: uuid.UUID
) -> list[Recipient]:
    """The target alone when the escalation named one (if still eligible), else every
    eligible user of ``roles`` but the creator. On the current transaction when there is one."""
    query = User.select(User.id, Lower(User.email, alias="email")).where(*_eligible(account_id))  # type: ignore[arg-type]
    if target_user_id is not None:
        query = query.where(User.id == target_user_id)
    else:
        query = query.where(User.account_role.is_in(list(roles)), User.id != creator_id)
    return msgspec.convert(await db.run(query), list[Recipient])


class AddressedUser(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    email: str
    account_role: str
    created_at: datetime


async def eligible_users_at(*, account_id: uuid.UUID, addresses: Sequence[str]) -> list[AddressedUser]:
    """The eligible users of the account whose address (lower-cased) is one of
    ``addresses``: whom an e-mail's pick-up link names."""
    if not addresses:
        return []
    rows = await db.run(
        User.select(User.id, Lower(User.email, alias="email"), User.account_role, User.created_at).where(
            *_eligible(account_id),  # type: ignore[arg-type]
            WhereRaw("lower(email) = ANY({}::text[])", [a.lower() for a in addresses]),
        )
    )
    return msgspec.convert(rows, list[AddressedUser])
