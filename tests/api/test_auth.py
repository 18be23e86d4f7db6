"""Bearer tokens: who may call at all (401), and which side of the API each caller may use
(403)."""

from __future__ import annotations

import uuid

import asyncpg
import jwt
import pytest

from server import tokens
from server.tokens import mint_service_token, mint_user_token
from tests.api.conftest import API, TenantFactory, assert_problem, bearer, database_fingerprint
from tests.conftest import TEST_JWT_SECRET

ANY_ID = "00000000-0000-4000-8000-000000000000"
EVERY_ENDPOINT = [
    ("PUT", f"/users/{ANY_ID}"),
    ("PUT", f"/teams/{ANY_ID}"),
    ("PUT", f"/channels/{ANY_ID}"),
    ("PUT", f"/psa-connections/{ANY_ID}"),
    ("PUT", f"/sessions/{ANY_ID}"),
    ("GET", f"/sessions/{ANY_ID}"),
    ("POST", f"/sessions/{ANY_ID}/handoffs"),
    ("GET", f"/handoffs/{ANY_ID}"),
    ("POST", f"/handoffs/{ANY_ID}/claim"),
    ("POST", f"/handoffs/{ANY_ID}/release"),
    ("GET", "/queue"),
]


def _claims_token(claims: dict[str, object], secret: str = TEST_JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(("method", "path"), EVERY_ENDPOINT)
async def test_every_endpoint_refuses_a_request_without_a_token(
    tenant: TenantFactory, method: str, path: str
) -> None:
    acme = await tenant()

    response = await acme.client.request(method, f"{API}{path}", json={})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer " + _claims_token({"sub": str(uuid.uuid4())}, secret="someone-elses-secret-of-32-bytes!"),
        "Bearer " + _claims_token({"sub": "not-a-uuid"}),
        "Bearer " + _claims_token({"sub": str(uuid.uuid4())}),  # signed, but nobody
        "Bearer " + _claims_token({"sub": "service:host-app"}),  # no account_id
        "Bearer " + _claims_token({"sub": "service:host-app", "account_id": str(uuid.uuid4())}),
        "Bearer " + jwt.encode({"sub": str(uuid.uuid4())}, key="", algorithm="none"),
    ],
    ids=[
        "basic",
        "empty-bearer",
        "garbage",
        "forged",
        "bad-subject",
        "unknown-user",
        "service-without-account",
        "service-of-unknown-account",
        "alg-none",
    ],
)
async def test_a_bad_token_is_a_401(tenant: TenantFactory, authorization: str) -> None:
    acme = await tenant()

    response = await acme.client.get(f"{API}/queue", headers={"Authorization": authorization})

    assert_problem(response, 401)


async def test_an_expired_token_is_a_401_that_says_so(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    expired = mint_user_token(TEST_JWT_SECRET, tech.id, ttl_s=-60)

    response = await acme.client.get(f"{API}/queue", headers=bearer(expired))

    assert "expired" in assert_problem(response, 401)["detail"]


async def test_a_token_that_worked_is_refused_once_it_expires(
    tenant: TenantFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token that was accepted is remembered (server.tokens); its expiry is not. The
    # clock it is judged by is moved to the token's own exp rather than waited for.
    acme = await tenant()
    tech = await acme.user()
    token = mint_user_token(TEST_JWT_SECRET, tech.id, ttl_s=60)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert (await acme.client.get(f"{API}/queue", headers=bearer(token))).status_code == 200

    monkeypatch.setattr(tokens, "clock", lambda: expires_at - 1)
    assert (await acme.client.get(f"{API}/queue", headers=bearer(token))).status_code == 200
    monkeypatch.setattr(tokens, "clock", lambda: expires_at)

    response = await acme.client.get(f"{API}/queue", headers=bearer(token))
    assert "expired" in assert_problem(response, 401)["detail"]


async def test_a_deactivated_user_is_locked_out_at_once(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    assert (await acme.client.get(f"{API}/queue", headers=tech.headers)).status_code == 200

    body = {"email": "t@example.com", "name": tech.name, "account_role": "technician", "is_active": False}
    assert (await acme.put(f"/users/{tech.id}", body)).status_code == 200

    assert_problem(await acme.client.get(f"{API}/queue", headers=tech.headers), 401)


async def test_a_deleted_user_is_locked_out(tenant: TenantFactory, db: asyncpg.Connection) -> None:
    acme = await tenant()
    tech = await acme.user()

    await db.execute("UPDATE users SET deleted_at = now() WHERE id = $1", tech.id)

    assert_problem(await acme.client.get(f"{API}/queue", headers=tech.headers), 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/sessions/{ANY_ID}/handoffs"),
        ("GET", f"/handoffs/{ANY_ID}"),
        ("POST", f"/handoffs/{ANY_ID}/claim"),
        ("POST", f"/handoffs/{ANY_ID}/release"),
        ("GET", "/queue"),
    ],
)
async def test_the_host_app_cannot_act_as_a_user(tenant: TenantFactory, method: str, path: str) -> None:
    acme = await tenant()

    response = await acme.client.request(
        method, f"{API}{path}", json={"intent": "park"}, headers=acme.host_app
    )

    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/users/{id}", {"email": "x@example.com", "name": "X", "account_role": "owner"}),
        ("/teams/{id}", {"name": "Mine now"}),
        ("/channels/{id}", {"kind": "slack", "url": "https://hooks.slack.com/services/x"}),
        (
            "/psa-connections/{id}",
            {"kind": "autotask", "base_url": "https://x.example.com", "credentials": {}},
        ),
        ("/sessions/{id}", {"user_id": ANY_ID}),
    ],
)
async def test_a_user_cannot_write_host_app_data(
    tenant: TenantFactory, db: asyncpg.Connection, path: str, body: dict[str, object]
) -> None:
    acme = await tenant()
    owner = await acme.user("owner")
    before = await database_fingerprint(db)

    response = await acme.client.put(f"{API}{path.format(id=uuid.uuid4())}", json=body, headers=owner.headers)

    assert_problem(response, 403)
    assert await database_fingerprint(db) == before


async def test_a_service_token_does_not_expire_but_names_its_account(tenant: TenantFactory) -> None:
    acme = await tenant()
    token = mint_service_token(TEST_JWT_SECRET, acme.account_id, name="psa-sync")
    assert "exp" not in jwt.decode(token, options={"verify_signature": False})

    response = await acme.client.put(
        f"{API}/teams/{uuid.uuid4()}", json={"name": "Desk"}, headers=bearer(token)
    )

    assert response.status_code == 201


async def test_health_needs_no_token(tenant: TenantFactory) -> None:
    acme = await tenant()

    assert (await acme.client.get("/health")).status_code == 200
