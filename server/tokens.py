"""Bearer tokens: HS256 JWTs whose ``sub`` is a user id, or ``service:<name>`` for
the host app (with the ``account_id`` it may write and a ``jti``).

SPEC "Tokens": a user token carries a numeric ``exp`` no further than
``BATON_MAX_TOKEN_LIFETIME_S`` ahead; any malformed claim is refused (``ClaimError``,
whose message is the 401's detail), never a 500. PyJWT alone accepts a numeric *string*
``exp`` (it checks ``int(exp)``) and no ``exp`` at all; ``_checked_claims`` holds every
claim Baton reads to the type it expects. A service token's ``jti`` is checked against
its account's revocation state on every request (server/auth.py), never remembered here.
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jwt

from settings import get_settings

ALGORITHM = "HS256"
SERVICE_PREFIX = "service:"
USER_TOKEN_TTL_S = 12 * 3600
# A token minted on a host whose clock runs a little ahead is still within the lifetime.
CLOCK_SKEW_S = 60
# Tokens whose signature was checked, remembered per process (a few hundred bytes each).
VERIFIED_TOKENS_MAX = 4096
TIME_CLAIMS = ("exp", "iat", "nbf")
# The time a remembered token's expiry is judged by: a test moves it instead of waiting.
clock: Callable[[], float] = time.time


class ClaimError(jwt.InvalidTokenError):
    """A signed token whose claims Baton does not accept; the message says why."""


def mint_user_token(secret: str, user_id: uuid.UUID | str, ttl_s: int = USER_TOKEN_TTL_S) -> str:
    now = int(time.time())
    claims = {"sub": str(uuid.UUID(str(user_id))), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def mint_service_token(
    secret: str, account_id: uuid.UUID | str, name: str = "host-app", jti: uuid.UUID | str | None = None
) -> str:
    """A service token does not expire by time: ``baton account rotate-token`` replaces
    it (its ``jti``, a new one unless given, is what the account's state names)."""
    claims = {
        "sub": f"{SERVICE_PREFIX}{name}",
        "account_id": str(uuid.UUID(str(account_id))),
        "iat": int(time.time()),
        "jti": str(uuid.UUID(str(jti)) if jti is not None else uuid.uuid4()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def is_service(claims: Mapping[str, Any]) -> bool:
    return str(claims["sub"]).startswith(SERVICE_PREFIX)


def decode(secret: str, token: str, *, max_lifetime_s: float | None = None) -> Mapping[str, Any]:
    """The claims (read-only: every use of the token shares them), or
    ``jwt.InvalidTokenError`` (expired, forged, malformed: ``ClaimError`` says which
    claim). A user token's ``exp`` is always a number here; a service token's, when it
    has one.

    PyJWT spends ~95 µs of CPU per token here (its key and segment checks; the HMAC is
    ~2 µs), on every request, for a token a user sends all day. So a token is checked by
    PyJWT once and then remembered by its exact text, signature included, under the
    secret that verified it; only its expiry can change, and that is checked on each use.
    """
    if max_lifetime_s is None:
        max_lifetime_s = get_settings().max_token_lifetime_s
    claims = _verified_claims(secret, token, max_lifetime_s)
    expires_at = claims.get("exp")
    if expires_at is not None and expires_at <= clock():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return claims


@functools.lru_cache(maxsize=VERIFIED_TOKENS_MAX)
def _verified_claims(secret: str, token: str, max_lifetime_s: float) -> Mapping[str, Any]:
    """PyJWT's full check (signature, algorithm, expiry), then Baton's of each claim; a
    failure is not remembered. Within the lifetime once, within it for good: ``exp`` only
    comes nearer."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]})
    _check_claims(claims, max_lifetime_s)
    return MappingProxyType(claims)


def _is_number(value: Any) -> bool:
    # bool is an int to Python, and NaN or infinity compares as no time ever could.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_uuid_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _check_claims(claims: Mapping[str, Any], max_lifetime_s: float) -> None:
    subject = claims["sub"]
    if not isinstance(subject, str):
        raise ClaimError("The token's sub must be a string.")
    for name in TIME_CLAIMS:
        if name in claims and not _is_number(claims[name]):
            raise ClaimError(f"The token's {name} must be a number (seconds since the epoch).")
    if subject.startswith(SERVICE_PREFIX):
        if not _is_uuid_text(claims.get("account_id")):
            raise ClaimError("The token's account_id is not an account id (a UUID).")
        if "jti" in claims and not _is_uuid_text(claims["jti"]):
            raise ClaimError("The token's jti is not a token id (a UUID).")
        return
    if not _is_uuid_text(subject):
        raise ClaimError("The token's sub is not a user id (a UUID).")
    if "exp" not in claims:
        raise ClaimError(
            "A user token must carry a numeric exp (when it expires, in seconds since the epoch)."
        )
    if claims["exp"] - time.time() > max_lifetime_s + CLOCK_SKEW_S:
        raise ClaimError(
            f"The token's exp is too far ahead: a user token may live at most {max_lifetime_s:g} s "
            "(BATON_MAX_TOKEN_LIFETIME_S)."
        )
