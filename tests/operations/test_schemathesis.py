"""The API fuzzed from its own OpenAPI document: Schemathesis against a real ``baton serve``
with real tokens. No request may get a 500, and every answer must match the document.

Bounded for CI: ``EXAMPLES_PER_OPERATION`` generated cases per operation (plus the
schema's own examples and boundary cases), each with a deadline.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import API, new_tenant
from tests.conftest import BatonProcess, BatonProcesses

EXAMPLES_PER_OPERATION = 100
# Fuzzing writes fast; the limits have their own tests.
UNLIMITED = {
    "BATON_RATE_LIMIT_WRITES_PER_MINUTE": "1000000",
    "BATON_RATE_LIMIT_INBOX_CONNECTS_PER_MINUTE": "1000000",
}
HOST_APP_TAG = "host app"
# Escalation policies take the service token as well (or an owner's or admin's): with it
# the fuzzer reaches their bodies, where the senior's engineer token stops at the guard.
SERVICE_TOKEN_TAGS = frozenset({HOST_APP_TAG, "escalation policies"})
URL_FIELDS = ("url", "base_url")  # of PUT /channels and PUT /psa-connections
# A schema-valid request may still break a rule of the data (a target from another
# account: 422) or of the state (a session already escalated: 409); "accepted" means
# any documented answer that is not a server error.
# A paging cursor is opaque: one Baton did not give out is a 400, and no document can say
# which strings Baton gave out. NUL characters are not generated: Postgres cannot store
# them, so any text holding one is a 400 by design (docs/api.md; tests/api cover it).
CONFIG = schemathesis.Config.from_str(
    """
[generation]
allow-x00 = false

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-name = ["GET /api/v1/queue", "GET /api/v1/notifications"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]
"""
)


@dataclass
class FuzzTarget:
    server: BatonProcess
    host_app: dict[str, str]
    senior: dict[str, str]
    session_id: uuid.UUID


@pytest.fixture
async def fuzz_target(baton: BatonProcesses, db: asyncpg.Connection) -> FuzzTarget:
    server = baton.serve(env=UNLIMITED)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        tech = await acme.user(name="Tess Tech")
        senior = await acme.user("engineer", name="Sam Senior")
        session_id = await acme.session(tech)
        await acme.handed_off(tech, session_id, "escalate", engineer_notes="Fuzz me")
    return FuzzTarget(server, acme.host_app, senior.headers, session_id)


def keep_lookups_local(case: Any) -> None:
    """A generated webhook or PSA URL whose host is a name the server would look up in
    DNS gets ``localhost`` for its host: a PUT resolves the name (the outbound rule), and
    tests never look up real names. Hosts refused without a lookup (malformed, IP
    literals in any form, ``.invalid``) are sent as generated."""
    from actors.outbound import DestinationRefused, parse_url

    if not isinstance(case.body, dict):
        return
    for field in URL_FIELDS:
        url = case.body.get(field)
        if not isinstance(url, str):
            continue
        try:
            destination = parse_url(url)
        except DestinationRefused:
            continue
        if destination.address is None:
            parts = urlsplit(url)
            port = f":{parts.port}" if parts.port else ""
            case.body[field] = urlunsplit(parts._replace(netloc=f"localhost{port}"))


def fuzz(operation: Any, headers: dict[str, str]) -> None:
    """EXAMPLES_PER_OPERATION generated requests to one operation, each checked."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: a failure here is reproducible
        database=None,
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        keep_lookups_local(case)
        case.call_and_validate(headers=headers)

    run()


def test_no_operation_answers_500_or_outside_its_schema(fuzz_target: FuzzTarget) -> None:
    # (Schemathesis' pytest plugin, schemathesis.pytest.from_fixture, does not run on
    # pytest 9 yet, so the operations are walked here.)
    url = f"{fuzz_target.server.base_url}/schema/openapi.json"
    schema = schemathesis.openapi.from_url(url, config=CONFIG)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # Each side of the API with its own kind of token: the wrong kind is a 403 (the
        # guards have their own tests) that would hide everything behind the guard.
        if not operation.path.startswith(API):
            headers = {}
        elif SERVICE_TOKEN_TAGS.intersection(operation.tags or []):
            headers = fuzz_target.host_app
        else:
            headers = fuzz_target.senior
        try:
            fuzz(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # Schemathesis' FailureGroup is a Base one
            failures[operation.label] = str(exc)[:3000]
    assert operations >= 20, f"only {operations} operations in the served schema"
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
