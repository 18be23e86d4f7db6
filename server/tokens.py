"""Bearer tokens: HS256 JWTs whose ``sub`` is a user id, or ``service:<name>`` for
the host app (with the ``account_id`` it may write)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt

ALGORITHM = "HS256"
SERVICE_PREFIX = "service:"
USER_TOKEN_TTL_S = 30 * 24 * 3600
# Tokens whose signature was checked, remembered per process (a few hundred bytes each).
VERIFIED_TOKENS_MAX = 4096


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


def decode(secret: str, token: str) -> Mapping[str, Any]:
    """The claims (read-only: every use of the token shares them), or
    ``jwt.InvalidTokenError`` (expired, forged, malformed).

    PyJWT spends ~95 µs of CPU per token here (its key and segment checks; the HMAC is
    ~2 µs), on every request, for a token a user sends all day. So a token is checked by
    PyJWT once and then remembered by its exact text, signature included, under the
    secret that verified it; only its expiry can change, and that is checked on each use.
    """
    claims = _verified_claims(secret, token)
    expires_at = claims.get("exp")  # PyJWT checked it is a number
    if expires_at is not None and expires_at <= time.time():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return claims


@functools.lru_cache(maxsize=VERIFIED_TOKENS_MAX)
def _verified_claims(secret: str, token: str) -> Mapping[str, Any]:
    """PyJWT's full check (signature, algorithm, claim types, expiry); a failure is not
    remembered."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]})
    return MappingProxyType(claims)
