"""Who is calling: a bearer JWT turned into a ``UserCaller`` or a ``HostAppCaller``.

The user is read from the database on every request, so deactivating or deleting a
user locks them out at once, whatever their token says. Guards then keep each kind of
caller to its side of the API: the host app writes the data Baton hands off, people
hand off and claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from server import db, tokens
from server.problems import Problem
from tables.enums import Role

BEARER = "bearer"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="baton"'}
# Roles that may release a hand-off somebody else holds.
RELEASE_ANY_ROLES: frozenset[str] = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class UserCaller:
    """An eligible (active, not deleted) user of ``account_id``."""

    account_id: uuid.UUID
    id: uuid.UUID
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class HostAppCaller:
    """The host app of ``account_id``, holding a service token."""

    account_id: uuid.UUID
    name: str


Caller = UserCaller | HostAppCaller

# Public for the benchmark, which runs the same lookup.
LOAD_USER = """
SELECT account_id, name, account_role
FROM users
WHERE id = $1 AND is_active AND deleted_at IS NULL
"""
_ACCOUNT_EXISTS = "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)"


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers=CHALLENGE)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header, or 401."""
    if not authorization:
        raise _unauthorized("Send an Authorization: Bearer <token> header.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise _unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def _as_uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise _unauthorized("The token does not name a user or an account.") from None


async def caller_from_token(secret: str, token: str) -> Caller:
    """The caller a token stands for, checked against the database; 401 otherwise."""
    try:
        claims = tokens.decode(secret, token)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired.") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("The token is not valid.") from None

    subject = str(claims["sub"])
    async with db.connection() as conn:
        if subject.startswith(tokens.SERVICE_PREFIX):
            account_id = _as_uuid(claims.get("account_id"))
            if not await conn.fetchval(_ACCOUNT_EXISTS, account_id):
                raise _unauthorized("The token's account does not exist.")
            return HostAppCaller(account_id=account_id, name=subject.removeprefix(tokens.SERVICE_PREFIX))
        user_id = _as_uuid(subject)
        row = await conn.fetchrow(LOAD_USER, user_id)
    if row is None:
        raise _unauthorized("This user is unknown, inactive or deleted.")
    return UserCaller(account_id=row["account_id"], id=user_id, name=row["name"], role=row["account_role"])


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Puts the ``Caller`` in ``request.user``; refuses the request with 401 otherwise."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        caller = await caller_from_token(connection.app.state.settings.jwt_secret, token)
        return AuthenticationResult(user=caller, auth=token)


# The guards are async although they never await: Litestar runs a sync guard in a worker
# thread (``ensure_async_callable``), a thread hop on every request for one isinstance().


async def users_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: people hand off, claim and read hand-offs; the host app does not."""
    if not isinstance(connection.user, UserCaller):
        raise Problem(403, "This endpoint is for users; a service token may only write host-app data.")


async def host_app_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: only the host app (a service token) writes users, teams, channels, PSA
    connections and sessions."""
    if not isinstance(connection.user, HostAppCaller):
        raise Problem(403, "Only the host app, with a service token, may write this.")


def provide_user(request: Request[Any, Any, Any]) -> UserCaller:
    """Dependency for handlers behind ``users_only``."""
    caller = request.user
    assert isinstance(caller, UserCaller), "users_only guard missing"
    return caller


def provide_host_app(request: Request[Any, Any, Any]) -> HostAppCaller:
    """Dependency for handlers behind ``host_app_only``."""
    caller = request.user
    assert isinstance(caller, HostAppCaller), "host_app_only guard missing"
    return caller


def provide_account_id(request: Request[Any, Any, Any]) -> uuid.UUID:
    """Dependency for handlers open to both kinds of caller: the account they act in."""
    caller: Caller = request.user
    return caller.account_id
