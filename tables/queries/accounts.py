"""Accounts and their service tokens: creating one, rotating its token, and whether a
service token is still accepted.

A service token's ``jti`` is stored on its account (``accounts.service_token_jti``);
rotating writes a new one and keeps the old one acceptable until the grace ends, by
Postgres' clock, which every replica reads. The builder throughout: the CLI's writes
are one-offs, and the host app's requests that check their token are off the click
path (each then writes through the builder anyway).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from piccolo.querystring import QueryString

from tables import db
from tables.accounts import Account


async def create_account(*, name: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A new account naming its first service token: (account id, the token's jti).

    Awaited as is (no ``db.run``): the CLI has no pool, Piccolo opens a connection."""
    account_id, jti = uuid.uuid4(), uuid.uuid4()
    await Account.insert(Account(id=account_id, name=name, service_token_jti=jti))
    return account_id, jti


class Rotated(msgspec.Struct, frozen=True, kw_only=True):
    jti: uuid.UUID
    previous_valid_until: datetime


async def rotate_service_token(*, account_id: uuid.UUID, grace_s: float) -> Rotated | None:
    """Name a new current token; the one it replaces works ``grace_s`` more seconds.
    None: no such account. Awaited as is, like ``create_account``."""
    a, jti = Account, uuid.uuid4()
    rows = (
        await a.update(
            {
                a.previous_service_token_jti: a.service_token_jti,
                a.previous_service_token_valid_until: QueryString(
                    "now() + make_interval(secs => {}::double precision)", grace_s
                ),
                a.service_token_jti: jti,
            }
        )
        .where(a.id == account_id)
        .returning(a.previous_service_token_valid_until)
    )
    if not rows:
        return None
    return Rotated(jti=jti, previous_valid_until=rows[0]["previous_service_token_valid_until"])


class TokenState(msgspec.Struct, frozen=True, kw_only=True):
    service_token_jti: uuid.UUID | None
    previous_service_token_jti: uuid.UUID | None
    previous_service_token_valid_until: datetime | None
    now: datetime  # Postgres' clock, the one every replica reads

    def accepts(self, jti: uuid.UUID | None) -> bool:
        """The account has never named a current token (every token signed for it, as
        before rotation existed), or this is its current token, or the one a rotation
        replaced, within its grace (NULL there: tokens from before the first rotation)."""
        if self.service_token_jti is None or (jti is not None and jti == self.service_token_jti):
            return True
        in_grace = (
            self.previous_service_token_valid_until is not None
            and self.previous_service_token_valid_until > self.now
        )
        return in_grace and (
            self.previous_service_token_jti is None
            or (jti is not None and jti == self.previous_service_token_jti)
        )


async def token_state(*, account_id: uuid.UUID) -> TokenState | None:
    """The account's revocation state; None when there is no such account."""
    a = Account
    row = await db.run(
        a.select(
            a.service_token_jti,
            a.previous_service_token_jti,
            a.previous_service_token_valid_until,
            QueryString("now()").as_alias("now"),
        )
        .where(a.id == account_id)
        .first()
    )
    return None if row is None else msgspec.convert(row, TokenState)
