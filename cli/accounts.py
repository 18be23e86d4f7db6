"""What ``baton account …`` and ``baton token`` read and write: accounts' service tokens
and the users a token may be minted for.

A service token's ``jti`` is stored on its account (``accounts.service_token_jti``);
rotating writes a new one and keeps the old one acceptable until the grace ends
(server/auth.py reads both on every request).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from tables import Account, User

# Piccolo's raw placeholders are {}: the account, the new jti, the grace in seconds.
ROTATE = """
UPDATE accounts
SET previous_service_token_jti = service_token_jti,
    previous_service_token_valid_until = now() + make_interval(secs => {}::double precision),
    service_token_jti = {}
WHERE id = {}
RETURNING previous_service_token_valid_until
"""


async def create_account(name: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A new account naming its first service token: (account id, the token's jti)."""
    account_id, jti = uuid.uuid4(), uuid.uuid4()
    await Account.insert(Account(id=account_id, name=name, service_token_jti=jti))
    return account_id, jti


@dataclass(frozen=True)
class Rotated:
    jti: uuid.UUID
    previous_valid_until: datetime


async def rotate_service_token(account_id: uuid.UUID, grace_s: float) -> Rotated | None:
    """Name a new current token; the one it replaces works ``grace_s`` more seconds (by
    Postgres' clock, which every replica reads). None: no such account."""
    jti = uuid.uuid4()
    rows = await Account.raw(ROTATE, grace_s, jti, account_id)
    if not rows:
        return None
    return Rotated(jti, rows[0]["previous_service_token_valid_until"])


class UserState(Enum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "inactive or deleted"
    UNKNOWN = "unknown"


async def user_state(user_id: uuid.UUID) -> UserState:
    row = await User.select(User.is_active, User.deleted_at).where(User.id == user_id).first()
    if row is None:
        return UserState.UNKNOWN
    if not row["is_active"] or row["deleted_at"] is not None:
        return UserState.INELIGIBLE
    return UserState.ELIGIBLE
