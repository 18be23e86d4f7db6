"""Bad input gets a clear 4xx problem, never a 500, and writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from tests.api.conftest import API, TenantFactory, assert_problem, database_fingerprint

NUL = "\u0000"


@dataclass
class Bad:
    """One bad request. ``as_user`` picks the token; ``{session}``/``{user}`` fill the path."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    as_user: bool = True
    status: int = 400


def _session(**fields: Any) -> dict[str, Any]:
    return {"user_id": "{user}", **fields}


def _user(**fields: Any) -> dict[str, Any]:
    return {"email": "a@example.com", "name": "A", "account_role": "engineer", **fields}


CREATE = "/sessions/{session}/handoffs"
CASES: dict[str, Bad] = {
    "handoff id not a uuid": Bad("GET", "/handoffs/not-a-uuid", status=404),
    "session id not a uuid": Bad("POST", "/sessions/123/handoffs", json={"intent": "park"}, status=404),
    "user id not a uuid": Bad("PUT", "/users/42", json=_user(), as_user=False, status=404),
    "unknown field": Bad("POST", CREATE, json={"intent": "park", "colour": "red"}),
    "unknown intent": Bad("POST", CREATE, json={"intent": "panic"}),
    "unknown priority": Bad("POST", CREATE, json={"intent": "park", "priority": "asap"}),
    "missing intent": Bad("POST", CREATE, json={"engineer_notes": "hi"}),
    "notes too long": Bad("POST", CREATE, json={"intent": "park", "engineer_notes": "x" * 4001}),
    "notes not text": Bad("POST", CREATE, json={"intent": "park", "engineer_notes": 12}),
    "target not a uuid": Bad("POST", CREATE, json={"intent": "escalate", "target_user_id": "bob"}),
    "malformed json": Bad(
        "POST", CREATE, content=b'{"intent": "park"', headers={"Content-Type": "application/json"}
    ),
    "json array": Bad("POST", CREATE, json=[{"intent": "park"}]),
    "empty body": Bad("POST", CREATE, content=b"", headers={"Content-Type": "application/json"}),
    "nul in notes": Bad("POST", CREATE, json={"intent": "park", "engineer_notes": f"a{NUL}b"}),
    "idempotency key too long": Bad(
        "POST", CREATE, json={"intent": "park"}, headers={"Idempotency-Key": "k" * 256}
    ),
    "idempotency key with spaces": Bad(
        "POST", CREATE, json={"intent": "park"}, headers={"Idempotency-Key": "two words"}
    ),
    "unknown role": Bad("PUT", "/users/{new}", json=_user(account_role="king"), as_user=False),
    "not an email": Bad("PUT", "/users/{new}", json=_user(email="not-an-email"), as_user=False),
    "empty name": Bad("PUT", "/users/{new}", json=_user(name=""), as_user=False),
    "name too long": Bad("PUT", "/users/{new}", json=_user(name="n" * 201), as_user=False),
    "unknown channel kind": Bad(
        "PUT", "/channels/{new}", json={"kind": "discord", "url": "https://x.example.com"}, as_user=False
    ),
    "channel url not http": Bad(
        "PUT", "/channels/{new}", json={"kind": "slack", "url": "ftp://x"}, as_user=False
    ),
    "unknown psa kind": Bad(
        "PUT",
        "/psa-connections/{new}",
        json={"kind": "zendesk", "base_url": "https://x.example.com", "credentials": {}},
        as_user=False,
    ),
    "too many credentials": Bad(
        "PUT",
        "/psa-connections/{new}",
        json={
            "kind": "autotask",
            "base_url": "https://x.example.com",
            "credentials": {f"k{i}": "v" for i in range(21)},
        },
        as_user=False,
    ),
    "unknown session status": Bad("PUT", "/sessions/{new}", json=_session(status="frozen"), as_user=False),
    "confidence tier too long": Bad(
        "PUT", "/sessions/{new}", json=_session(confidence_tier="c" * 65), as_user=False
    ),
    "unknown field in a step": Bad(
        "PUT",
        "/sessions/{new}",
        json=_session(steps=[{"step_order": 0, "content": {"text": "x", "html": "<b>"}}]),
        as_user=False,
    ),
    "negative step order": Bad(
        "PUT",
        "/sessions/{new}",
        json=_session(steps=[{"step_order": -1, "content": {"text": "x"}}]),
        as_user=False,
    ),
    "too many steps": Bad(
        "PUT",
        "/sessions/{new}",
        json=_session(steps=[{"step_order": i, "content": {"text": "x"}} for i in range(501)]),
        as_user=False,
    ),
    "nul in a summary": Bad(
        "PUT", "/sessions/{new}", json=_session(problem_summary=f"a{NUL}"), as_user=False
    ),
    "nul in a step": Bad(
        "PUT",
        "/sessions/{new}",
        json=_session(steps=[{"step_order": 0, "content": {"text": f"x{NUL}"}}]),
        as_user=False,
    ),
}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return (
            value.replace("{session}", ids["session"])
            .replace("{user}", ids["user"])
            .replace("{new}", ids["new"])
        )
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_bad_input_is_a_4xx_problem_and_writes_nothing(
    tenant: TenantFactory, db: asyncpg.Connection, case: Bad
) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)
    ids = {"session": str(session_id), "user": str(tech.id), "new": str(uuid.uuid4())}
    headers = {**(tech.headers if case.as_user else acme.host_app), **case.headers}
    before = await database_fingerprint(db)

    response = await acme.client.request(
        case.method,
        f"{API}{_fill(case.path, ids)}",
        json=_fill(case.json, ids) if case.content is None else None,
        content=case.content,
        headers=headers,
    )

    assert_problem(response, case.status)
    assert await database_fingerprint(db) == before


async def test_a_validation_problem_names_the_field(tenant: TenantFactory) -> None:
    acme = await tenant()
    tech = await acme.user()
    session_id = await acme.session(tech)

    response = await acme.hand_off(tech, session_id, "park", engineer_notes="x" * 4001)

    body = assert_problem(response, 400)
    assert body["errors"][0]["key"] == "engineer_notes"
