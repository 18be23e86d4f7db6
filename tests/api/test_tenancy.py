"""Nothing crosses accounts: every endpoint, given another account's token and this
account's ids, answers 404 (never 403, which would confirm the id exists) and changes
nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.api.conftest import API, Person, Tenant, TenantFactory, assert_problem, database_fingerprint


@dataclass
class Victim:
    """Account A's rows, which account B will try to reach."""

    tech: Person
    team_id: uuid.UUID
    channel_id: uuid.UUID
    psa_connection_id: uuid.UUID
    session_id: uuid.UUID
    open_handoff_id: str
    claimed_handoff_id: str


async def _victim(acme: Tenant) -> Victim:
    tech = await acme.user()
    senior = await acme.user("engineer")
    team_id = await acme.team()
    channel_id, psa_connection_id = uuid.uuid4(), uuid.uuid4()
    # IP literals the test session allows: a host name would be looked up in DNS.
    channel = await acme.put(
        f"/channels/{channel_id}", {"kind": "slack", "url": "https://127.0.0.1:9/services/a"}
    )
    psa = await acme.put(
        f"/psa-connections/{psa_connection_id}",
        {"kind": "halopsa", "base_url": "https://127.0.0.1:9", "credentials": {"secret": "s"}},
    )
    assert (channel.status_code, psa.status_code) == (201, 201), (channel.text, psa.text)
    session_id = await acme.session(tech)
    open_handoff = await acme.handed_off(tech, session_id, "escalate")
    claimed = await acme.handed_off(tech, await acme.session(tech), "park")
    assert (await acme.claim(senior, claimed["id"])).status_code == 200
    return Victim(tech, team_id, channel_id, psa_connection_id, session_id, open_handoff["id"], claimed["id"])


# (method, path template, who of account B calls, body)
ATTEMPTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    (
        "PUT",
        "/users/{tech}",
        "host_app",
        {"email": "x@example.com", "name": "Taken", "account_role": "owner"},
    ),
    ("PUT", "/teams/{team}", "host_app", {"name": "Taken"}),
    ("PUT", "/channels/{channel}", "host_app", {"kind": "slack", "url": "https://127.0.0.2:9/hook"}),
    (
        "PUT",
        "/psa-connections/{psa}",
        "host_app",
        {"kind": "halopsa", "base_url": "https://127.0.0.2:9", "credentials": {}},
    ),
    ("PUT", "/sessions/{session}", "host_app", {"user_id": "{b_user}", "status": "closed"}),
    ("GET", "/sessions/{session}", "host_app", None),
    ("GET", "/sessions/{session}", "owner", None),
    ("POST", "/sessions/{session}/handoffs", "owner", {"intent": "park"}),
    ("GET", "/handoffs/{open}", "owner", None),
    ("POST", "/handoffs/{open}/claim", "owner", None),
    ("POST", "/handoffs/{claimed}/release", "owner", None),
]


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {key: _fill(value, ids) for key, value in template.items()}
    return template


@pytest.mark.parametrize(
    ("method", "path", "who", "body"), ATTEMPTS, ids=[f"{a[0]} {a[1]}" for a in ATTEMPTS]
)
async def test_another_accounts_token_finds_nothing_and_changes_nothing(
    tenant: TenantFactory,
    db: asyncpg.Connection,
    method: str,
    path: str,
    who: str,
    body: dict[str, Any] | None,
) -> None:
    acme, intruder = await tenant("Acme MSP"), await tenant("Intruder MSP")
    victim = await _victim(acme)
    intruder_owner = await intruder.user("owner")
    ids = {
        "tech": str(victim.tech.id),
        "team": str(victim.team_id),
        "channel": str(victim.channel_id),
        "psa": str(victim.psa_connection_id),
        "session": str(victim.session_id),
        "open": victim.open_handoff_id,
        "claimed": victim.claimed_handoff_id,
        "b_user": str(intruder_owner.id),
    }
    headers = intruder.host_app if who == "host_app" else intruder_owner.headers
    before = await database_fingerprint(db)

    response = await acme.client.request(
        method, f"{API}{_fill(path, ids)}", json=_fill(body, ids), headers=headers
    )

    assert_problem(response, 404)
    assert await database_fingerprint(db) == before


async def test_another_accounts_queue_is_not_shown(tenant: TenantFactory) -> None:
    acme, intruder = await tenant("Acme MSP"), await tenant("Intruder MSP")
    await _victim(acme)
    intruder_owner = await intruder.user("owner")

    response = await acme.client.get(f"{API}/queue", headers=intruder_owner.headers)

    assert response.json() == {"items": [], "next_cursor": None}
