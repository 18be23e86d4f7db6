"""Who is calling: a bearer JWT turned into a ``UserCaller`` or a ``HostAppCaller``.

The user is read from the database on every request, so deactivating or deleting a
user locks them out at once, whatever their token says; a service token's account and
revocation state likewise, so a rotation (``baton account rotate-token``) counts at once
on every replica. Guards then keep each kind of caller to its side of the API: the host
app writes the data Baton hands off, people hand off and claim.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from server import tokens
from server.problems import Problem
from tables import db
from tables.enums import Role
from tables.queries import accounts, people
from tables.states import OVERSEER_ROLES

log = logging.getLogger("baton.auth")

BEARER = "bearer"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="baton"'}


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

# 503, not 401: the token may well be good, but its state could not be read, so it is
# refused (fail closed) until it can be; a client should retry, not ask for a new token.
REVOCATION_UNREADABLE = (
    "Service tokens are refused while their revocation state cannot be read; try again shortly."
)


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


def _claims(secret: str, token: str) -> Mapping[str, Any]:
    try:
        return tokens.decode(secret, token)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise _unauthorized("The token is not valid yet.") from None
    except tokens.ClaimError as exc:
        raise _unauthorized(str(exc)) from None
    except jwt.InvalidTokenError:
        raise _unauthorized("The token is not valid.") from None


async def _host_app(claims: Mapping[str, Any]) -> HostAppCaller:
    """A service token's account and its revocation state, read on every request and on
    every replica alike (no cache: a rotation counts at once, by Postgres' clock)."""
    account_id = uuid.UUID(claims["account_id"])  # a UUID: tokens.decode checked it
    jti = claims.get("jti")
    try:
        state = await accounts.token_state(account_id=account_id)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.error("service token of account %s refused: revocation state unreadable (%s)", account_id, exc)
        raise Problem(503, REVOCATION_UNREADABLE, headers={"Retry-After": "5"}) from None
    if state is None:
        raise _unauthorized("The token's account does not exist.")
    if not state.accepts(None if jti is None else uuid.UUID(jti)):
        raise _unauthorized("This service token was replaced (baton account rotate-token); use the new one.")
    return HostAppCaller(account_id=account_id, name=str(claims["sub"]).removeprefix(tokens.SERVICE_PREFIX))


async def caller_from_token(secret: str, token: str) -> Caller:
    """The caller a token stands for, checked against the database; 401 otherwise (503
    for a service token whose revocation state cannot be read)."""
    claims = _claims(secret, token)
    if tokens.is_service(claims):
        return await _host_app(claims)
    user_id = uuid.UUID(claims["sub"])  # a UUID: tokens.decode checked it
    async with db.connection() as conn:
        user = await people.user_for_request(conn, user_id=user_id)
    if user is None:
        raise _unauthorized("This user is unknown, inactive or deleted.")
    return UserCaller(account_id=user.account_id, id=user_id, name=user.name, role=user.account_role)


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


async def host_app_or_overseer(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the account's settings (escalation policies) are the host app's to write,
    or an owner's or admin's; an engineer or technician may not."""
    caller = connection.user
    if isinstance(caller, HostAppCaller):
        return
    if isinstance(caller, UserCaller) and caller.role in OVERSEER_ROLES:
        return
    raise Problem(403, "Only the host app (a service token), an owner or an admin may manage this.")


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
