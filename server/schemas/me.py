"""Who the caller is, for a client that holds only a token (the inbox page)."""

from __future__ import annotations

import uuid

import msgspec

from tables.enums import Role


class MeOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    role: Role
