"""Token claims, lifetimes and rotation, against real ``baton serve`` processes (SPEC "Tokens").

The probe found: a signed token with a string ``exp`` answered 500 (the websocket closed
4500); a user token without ``exp`` was valid forever, one with ``exp`` in 2286 nearly
so; ``baton token`` signed any UUID, even of no user; and a service token could never be
revoked short of changing ``BATON_JWT_SECRET`` for everyone.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.tokens import mint_user_token
from tests.conftest import TEST_JWT_SECRET, BatonProcess, BatonProcesses
from tests.conftest import run_baton as cli

API = "/api/v1"
MAX_LIFETIME_S = 24 * 3600  # BATON_MAX_TOKEN_LIFETIME_S's default
FRAME_TIMEOUT_S = 10.0


def signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def an_account(db: asyncpg.Connection) -> uuid.UUID:
    """An account as the first edition made them: it names no service token yet."""
    account_id = uuid.uuid4()
    await db.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Acme MSP')", account_id)
    return account_id


async def a_user(db: asyncpg.Connection, account_id: uuid.UUID | None = None) -> uuid.UUID:
    account_id = account_id or await an_account(db)
    user_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO users (id, account_id, email, name, account_role) "
        "VALUES ($1, $2, 'eli@example.com', 'Eli Novak', 'engineer')",
        user_id,
        account_id,
    )
    return user_id


async def me(server: BatonProcess, token: str) -> httpx.Response:
    """A user's request: ``GET /me``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        return await http.get(f"{API}/me", headers=bearer(token))


async def host_write(server: BatonProcess, token: str) -> httpx.Response:
    """A host app's request: ``PUT /teams/{id}``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        return await http.put(
            f"{API}/teams/{uuid.uuid4()}", json={"name": "Service desk"}, headers=bearer(token)
        )


def detail(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["detail"])


async def inbox_close_code(server: BatonProcess, token: str) -> int | None:
    url = server.base_url.replace("http://", "ws://") + f"{API}/inbox"
    async with connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT_S)
    return closed.value.rcvd.code if closed.value.rcvd else None


# ------------------------------------------------------------------ user tokens


async def test_a_signed_token_with_a_string_exp_is_401_and_its_socket_is_closed_4401(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    user_id = await a_user(db)
    token = signed({"sub": str(user_id), "exp": str(int(time.time()) + 3600)})

    response = await me(server, token)

    assert response.status_code == 401, response.text
    assert "exp must be a number" in detail(response)
    assert await inbox_close_code(server, token) == 4401
    assert "Traceback" not in server.log()


async def test_a_user_token_without_exp_is_401_saying_a_numeric_exp_is_required(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    user_id = await a_user(db)
    forever = signed({"sub": str(user_id), "iat": int(time.time())})

    response = await me(server, forever)

    assert response.status_code == 401, response.text
    assert "must carry a numeric exp" in detail(response)
    assert await inbox_close_code(server, forever) == 4401


async def test_a_user_token_living_beyond_the_max_lifetime_is_401_saying_so(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    user_id = await a_user(db)
    now = int(time.time())
    year_2286 = signed({"sub": str(user_id), "exp": 9_999_999_999})
    a_day_and_an_hour = signed({"sub": str(user_id), "exp": now + MAX_LIFETIME_S + 3600})
    a_day = signed({"sub": str(user_id), "exp": now + MAX_LIFETIME_S})

    for token in (year_2286, a_day_and_an_hour):
        response = await me(server, token)
        assert response.status_code == 401, response.text
        assert "BATON_MAX_TOKEN_LIFETIME_S" in detail(response)
        assert f"at most {MAX_LIFETIME_S} s" in detail(response)
    assert (await me(server, a_day)).status_code == 200  # the limit itself is allowed


async def test_every_malformed_claim_is_401_never_500(baton: BatonProcesses, db: asyncpg.Connection) -> None:
    server = baton.serve()
    account_id = await an_account(db)
    user = str(await a_user(db, account_id))
    exp = int(time.time()) + 3600
    service = {"sub": "service:host-app", "account_id": str(account_id)}
    user_cases: dict[str, dict[str, Any]] = {
        "sub a number": {"sub": 12345, "exp": exp},
        "sub a list": {"sub": [user], "exp": exp},
        "sub not a UUID": {"sub": "dana", "exp": exp},
        "exp a numeric string": {"sub": user, "exp": str(exp)},
        "exp a word": {"sub": user, "exp": "tomorrow"},
        "exp true": {"sub": user, "exp": True},
        "exp NaN": {"sub": user, "exp": math.nan},
        "exp infinite": {"sub": user, "exp": math.inf},
        "exp a list": {"sub": user, "exp": [exp]},
        "exp null": {"sub": user, "exp": None},
        "iat a numeric string": {"sub": user, "exp": exp, "iat": str(exp - 3600)},
        "iat true": {"sub": user, "exp": exp, "iat": True},
        "iat in the future": {"sub": user, "exp": exp, "iat": exp},
        "nbf a numeric string": {"sub": user, "exp": exp, "nbf": "0"},
        "nbf NaN": {"sub": user, "exp": exp, "nbf": math.nan},
        "nbf in the future": {"sub": user, "exp": exp, "nbf": exp - 60},
    }
    service_cases: dict[str, dict[str, Any]] = {
        "account_id missing": {"sub": "service:host-app"},
        "account_id a number": {**service, "account_id": 12345},
        "account_id a 32-digit number": {**service, "account_id": int("1" * 32)},
        "account_id a list": {**service, "account_id": [str(account_id)]},
        "account_id not a UUID": {**service, "account_id": "acme"},
        "jti not a UUID": {**service, "jti": "first"},
        "jti a number": {**service, "jti": 7},
        "exp a numeric string": {**service, "exp": str(exp)},
        "iat a numeric string": {**service, "iat": str(exp)},
    }

    answers = {name: await me(server, signed(claims)) for name, claims in user_cases.items()}
    answers |= {f"service, {name}": await host_write(server, signed(c)) for name, c in service_cases.items()}

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == dict.fromkeys(statuses, 401)
    for response in answers.values():
        assert detail(response) and response.headers["www-authenticate"].startswith("Bearer")
    assert "Traceback" not in server.log()


# ------------------------------------------------------------------ baton token


async def test_baton_token_refuses_an_id_of_no_user(db: asyncpg.Connection) -> None:
    nobody = uuid.uuid4()

    done = cli("token", str(nobody))

    assert done.returncode != 0 and done.stdout == ""
    assert f"no such user: {nobody}" in done.stderr


async def test_baton_token_mints_for_the_ttl_asked_and_never_beyond_the_max_lifetime(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    user_id = await a_user(db)

    an_hour = cli("token", str(user_id), "--ttl", "3600")
    by_default = cli("token", str(user_id))
    too_long = cli("token", str(user_id), "--ttl", str(MAX_LIFETIME_S + 1))

    assert an_hour.returncode == 0, an_hour.stderr
    hour_token = an_hour.stdout.strip()
    claims = jwt.decode(hour_token, TEST_JWT_SECRET, algorithms=["HS256"])
    assert abs(claims["exp"] - (time.time() + 3600)) < 60
    default_claims = jwt.decode(by_default.stdout.strip(), TEST_JWT_SECRET, algorithms=["HS256"])
    assert abs(default_claims["exp"] - (time.time() + 12 * 3600)) < 60
    assert too_long.returncode != 0 and too_long.stdout == ""
    assert "BATON_MAX_TOKEN_LIFETIME_S" in too_long.stderr
    assert (await me(baton.serve(), hour_token)).status_code == 200


# ------------------------------------------------------------------ service tokens


def _rotate(account_id: str, grace_s: float) -> tuple[str, float]:
    """(the new token, the moment the previous one stops, as epoch seconds)."""
    done = cli("account", "rotate-token", account_id, "--grace", str(grace_s), "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    return printed["service_token"], datetime.fromisoformat(printed["previous_valid_until"]).timestamp()


async def test_a_rotated_service_token_works_through_its_grace_and_then_on_no_replica(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    replicas = [baton.serve(), baton.serve()]
    created = cli("account", "create", "Contoso MSP", "--json")
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    old = account["service_token"]
    assert "jti" in jwt.decode(old, TEST_JWT_SECRET, algorithms=["HS256"])
    assert [(await host_write(r, old)).status_code for r in replicas] == [201, 201]

    new, old_ends_at = _rotate(account["account_id"], grace_s=3.0)

    assert time.time() < old_ends_at, "the grace was over before the command returned"
    assert [(await host_write(r, old)).status_code for r in replicas] == [201, 201]  # in the grace
    await asyncio.sleep(max(0.0, old_ends_at - time.time()) + 0.05)
    refused = [await host_write(r, old) for r in replicas]
    assert [r.status_code for r in refused] == [401, 401]
    assert all("rotate-token" in detail(r) for r in refused)
    assert [(await host_write(r, new)).status_code for r in replicas] == [201, 201]


async def test_a_service_token_without_jti_works_until_its_accounts_first_rotation(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve()
    account_id = await an_account(db)
    first_edition = signed(
        {"sub": "service:host-app", "account_id": str(account_id), "iat": int(time.time())}
    )
    assert (await host_write(server, first_edition)).status_code == 201

    new, _ = _rotate(str(account_id), grace_s=0)

    assert (await host_write(server, first_edition)).status_code == 401
    assert (await host_write(server, new)).status_code == 201


async def test_rotate_token_refuses_an_account_that_does_not_exist() -> None:
    done = cli("account", "rotate-token", str(uuid.uuid4()))

    assert done.returncode != 0 and done.stdout == ""
    assert "no such account" in done.stderr


async def test_service_tokens_are_refused_when_their_revocation_state_cannot_be_read(
    baton: BatonProcesses, db: asyncpg.Connection, database_url: str
) -> None:
    """Postgres down stops every request, users' too, so that proves nothing about service
    tokens. What can fail alone is the read of the state: here a replica whose database
    role may read an account but not its token columns (as a replica would that runs
    ahead of the migration). Users still get in; the host app does not."""
    account_id = await an_account(db)
    user_id = await a_user(db, account_id)
    role, password = f"baton_no_revocation_{secrets.token_hex(4)}", secrets.token_hex(16)
    database = urlsplit(database_url).path.lstrip("/")
    await db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    server: BatonProcess | None = None
    try:
        await db.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        await db.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await db.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        await db.execute(f"REVOKE SELECT ON accounts FROM {role}")
        await db.execute(f"GRANT SELECT (id, name, created_at) ON accounts TO {role}")
        parts = urlsplit(database_url)
        as_role = urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
        server = baton.serve(env={"DATABASE_URL": as_role})
        service_token = signed(
            {"sub": "service:host-app", "account_id": str(account_id), "jti": str(uuid.uuid4())}
        )

        refused = await host_write(server, service_token)
        user_answer = await me(server, mint_user_token(TEST_JWT_SECRET, user_id))

        assert refused.status_code == 503, refused.text
        assert "revocation state cannot be read" in detail(refused)
        assert user_answer.status_code == 200, user_answer.text
        assert await db.fetchval("SELECT count(*) FROM teams WHERE account_id = $1", account_id) == 0
    finally:
        if server is not None:
            server.stop()
        await db.execute(f"DROP OWNED BY {role}")
        await db.execute(f"DROP ROLE {role}")
