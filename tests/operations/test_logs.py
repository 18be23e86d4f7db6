"""Structured logs: JSON lines naming the request, account and hand-off, and never a secret.

Real ``baton serve`` and ``baton worker`` processes at DEBUG, driven through the API with
real tokens, webhooks, PSA credentials and an AI key; then their whole logs are searched.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import connect

from tests.actors.conftest import add_channel, connect_psa, escalation_session, eventually, worker_env
from tests.api.conftest import API, new_tenant
from tests.conftest import TEST_JWT_SECRET, BatonProcess, BatonProcesses
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.chat import FakeWebhooks
from tests.fakes.psa import FakeConnectWise

JSON_DEBUG = {"BATON_LOG_FORMAT": "json", "BATON_LOG_LEVEL": "DEBUG"}
WAIT_S = 45


def json_lines(process: BatonProcess) -> list[dict[str, Any]]:
    """Every line of the process's log, each of which must be one JSON object."""
    lines = []
    for line in process.log().splitlines():
        if line.strip():
            lines.append(json.loads(line))  # a line that is not JSON fails the test here
    return lines


async def test_each_request_is_logged_as_json_with_its_request_account_and_handoff_ids(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve(env=JSON_DEBUG)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        tech = await acme.user(name="Tess Tech")
        session_id = await acme.session(tech)
        created = await http.post(
            f"{API}/sessions/{session_id}/handoffs",
            json={"intent": "park"},
            headers={**tech.headers, "X-Request-ID": "host-app-req-42"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Request-ID"] == "host-app-req-42"
        handoff_id = created.json()["id"]

        read = await http.get(f"{API}/handoffs/{handoff_id}", headers=tech.headers)
        generated = read.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        # A request id that could forge log lines or headers is replaced, not echoed.
        forged = await http.get("/health", headers={"X-Request-ID": "a b\tc" + "x" * 200})
        assert forged.headers["X-Request-ID"] != "a b\tc" + "x" * 200

    def access_line(request_id: str) -> dict[str, Any] | None:
        for line in json_lines(server):
            if line.get("logger") == "uvicorn.access" and line.get("request_id") == request_id:
                return line
        return None

    await eventually(lambda: _async(access_line("host-app-req-42")), 5, "the create's access log line")
    create_line = access_line("host-app-req-42")
    assert create_line is not None
    assert "POST /api/v1/sessions/" in create_line["message"]
    assert create_line["account_id"] == str(acme.account_id)
    assert create_line["handoff_id"] == handoff_id
    read_line = access_line(generated)
    assert read_line is not None
    assert read_line["account_id"] == str(acme.account_id) and read_line["handoff_id"] == handoff_id
    assert {"time", "level", "logger", "message", "pid"} <= set(read_line)


async def test_no_token_secret_webhook_url_or_psa_credential_is_ever_logged(
    baton: BatonProcesses,
    db: asyncpg.Connection,
    ai: FakeAnthropic,
    webhooks: FakeWebhooks,
    connectwise: FakeConnectWise,
) -> None:
    server = baton.serve(env={**JSON_DEBUG, **ai.env()})
    worker = baton.worker(env=worker_env(ai.env(), JSON_DEBUG))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        tech = await acme.user(name="Tess Tech")
        senior = await acme.user("engineer", name="Sam Senior")
        await add_channel(acme, "slack", webhooks.slack_url)
        await add_channel(acme, "teams", webhooks.teams_url)
        connection_id = await connect_psa(acme, connectwise)
        session_id = await escalation_session(
            acme, tech, psa_ticket_id="777", psa_connection_id=str(connection_id)
        )

        # The inbox, signed in the browser way (the token in the first message).
        ws_url = server.base_url.replace("http://", "ws://") + f"{API}/inbox"
        token = senior.headers["Authorization"].removeprefix("Bearer ")
        async with connect(ws_url) as socket:
            await socket.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "hello"

            created = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Locked out")
            # A bad token, and a token in a place it does not belong, are refused and not echoed.
            bad = await http.get(f"{API}/queue", headers={"Authorization": f"Bearer {token}x"})
            assert bad.status_code == 401
            await http.get(f"/health?token={token}")

            handoff_id = uuid.UUID(created["id"])

            async def all_sent() -> bool:
                done = await db.fetchval(
                    "SELECT count(*) FROM deliveries WHERE handoff_id = $1 AND status = 'sent' "
                    "AND channel IN ('psa', 'slack', 'teams')",
                    handoff_id,
                )
                return bool(done == 3)

            await eventually(all_sent, WAIT_S, "the PSA note and both chat messages", worker.log)
            claimed = await acme.claim(senior, created["id"])
            assert claimed.status_code == 200

    server.stop()
    worker.stop()
    secrets = {
        "a user token": token,
        "the host app's service token": acme.host_app["Authorization"].removeprefix("Bearer "),
        "the JWT secret": TEST_JWT_SECRET,
        "the AI key": ai.env()["ANTHROPIC_API_KEY"],
        "the Slack webhook URL": webhooks.SLACK_PATH,
        "the Slack webhook secret": "slacksecret",
        "the Teams webhook secret": "teamssecret",
        **{f"PSA credential {name}": value for name, value in connectwise.credentials.items()},
    }
    for process in (server, worker):
        log = process.log()
        assert "DEBUG" in log  # the test proves something only if DEBUG lines were written
        json_lines(process)
        for what, value in secrets.items():
            leak = leaked_part(value, log)
            assert leak is None, f"{what} appears in the {process.name} log: {leak!r}"


def leaked_part(secret: str, log: str, window: int = 12) -> str | None:
    """Any run of ``window`` characters of ``secret`` found in ``log`` (a token cut short
    by a library's dump leaks as surely as a whole one); short secrets must not appear whole."""
    if len(secret) <= window:
        return secret if secret in log else None
    for start in range(len(secret) - window + 1):
        part = secret[start : start + window]
        if part in log:
            return part
    return None


async def _async(value: object) -> object:
    return value
