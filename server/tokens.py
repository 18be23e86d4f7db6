"""Bearer tokens: HS256 JWTs whose ``sub`` is a user id, or ``service:<name>`` for
the host app (with the ``account_id`` it may write)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

ALGORITHM = "HS256"
SERVICE_PREFIX = "service:"
USER_TOKEN_TTL_S = 30 * 24 * 3600


def mint_user_token(secret: str, user_id: uuid.UUID | str, ttl_s: int = USER_TOKEN_TTL_S) -> str:
    now = int(time.time())
    claims = {"sub": str(uuid.UUID(str(user_id))), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def mint_service_token(secret: str, account_id: uuid.UUID | str, name: str = "host-app") -> str:
    """A service token does not expire by time; rotate BATON_JWT_SECRET to revoke it."""
    claims = {
        "sub": f"{SERVICE_PREFIX}{name}",
        "account_id": str(uuid.UUID(str(account_id))),
        "iat": int(time.time()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(secret: str, token: str) -> dict[str, Any]:
    """The claims, or ``jwt.InvalidTokenError`` (expired, forged, malformed)."""
    return jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]})
