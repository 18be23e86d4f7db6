"""SPEC "Outbound destinations" and "Secrets stay secret", against real processes.

Every refused destination points at a ``RecordingListener`` on loopback, run by a Baton
process that allows no network (``BATON_OUTBOUND_ALLOW_CIDRS`` empty), and the test
asserts the listener was never contacted. Rows the PUT rule would refuse are inserted
with SQL, as rows stored before the rule (or whose name resolves elsewhere now) would
be. No packet leaves loopback: every host is an IP literal, ``localhost`` or
``.invalid``, and a destination that is let through is a local listener or fake.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web

from tests.actors.conftest import DIAGNOSTIC_SESSION, eventually, worker_env
from tests.api.conftest import API, Tenant, assert_problem, database_fingerprint, new_tenant
from tests.conftest import BatonProcess, BatonProcesses
from tests.fakes.listener import RecordingListener
from tests.fakes.psa import FakeAutotask, FakeConnectWise
from tests.fakes.server import ThreadedServer

WAIT_S = 30
ALLOW_NOTHING = {"BATON_OUTBOUND_ALLOW_CIDRS": ""}
ALLOW_LOOPBACK = {"BATON_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8,::1/128"}
RULE_HINT = "Baton only calls global addresses (BATON_OUTBOUND_ALLOW_CIDRS adds on-premises networks)"
LEAKED = "LEAKED-SECRET-7f3a"  # what a hostile or careless endpoint echoes back


# ------------------------------------------------------------------ processes and rows


@pytest.fixture
def listener() -> Iterator[RecordingListener]:
    with RecordingListener() as recording:
        yield recording


async def _tenant_on(server: BatonProcess, db: asyncpg.Connection) -> AsyncIterator[Tenant]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
        yield await new_tenant(db, http, "Acme MSP")


@pytest.fixture
async def strict(baton: BatonProcesses, db: asyncpg.Connection) -> AsyncIterator[Tenant]:
    """A tenant on a ``baton serve`` that allows no network besides global addresses."""
    async for tenant in _tenant_on(baton.serve(env=ALLOW_NOTHING), db):
        yield tenant


@pytest.fixture
async def lenient(baton: BatonProcesses, db: asyncpg.Connection) -> AsyncIterator[Tenant]:
    """A tenant on a ``baton serve`` that allows loopback, where the fakes listen."""
    async for tenant in _tenant_on(baton.serve(env=ALLOW_LOOPBACK), db):
        yield tenant


async def _stored_channel(db: asyncpg.Connection, acme: Tenant, kind: str, url: str) -> uuid.UUID:
    channel_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO notification_channels (id, account_id, kind, url, enabled, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, true, now(), now())",
        channel_id,
        acme.account_id,
        kind,
        url,
    )
    return channel_id


async def _stored_psa(
    db: asyncpg.Connection, acme: Tenant, kind: str, base_url: str, credentials: dict[str, str]
) -> uuid.UUID:
    connection_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO psa_connections "
        "(id, account_id, kind, base_url, credentials, member_mapping, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, '{}'::jsonb, now(), now())",
        connection_id,
        acme.account_id,
        kind,
        base_url,
        json.dumps(credentials),
    )
    return connection_id


async def _put_psa(acme: Tenant, kind: str, base_url: str, credentials: dict[str, str]) -> uuid.UUID:
    connection_id = uuid.uuid4()
    response = await acme.put(
        f"/psa-connections/{connection_id}", {"kind": kind, "base_url": base_url, "credentials": credentials}
    )
    assert response.status_code == 201, response.text
    return connection_id


async def _escalated(
    acme: Tenant, connection_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, dict[str, str]]:
    """An escalation (on PSA ticket 4242 when a connection is given); (its id, a senior's headers)."""
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer", name="Sam Senior")
    fields: dict[str, Any] = dict(DIAGNOSTIC_SESSION)
    if connection_id is not None:
        fields.update(psa_ticket_id="4242", psa_connection_id=str(connection_id))
    session_id = await acme.session(tech, **fields)
    created = await acme.handed_off(tech, session_id, "escalate", engineer_notes="Needs a senior")
    return uuid.UUID(created["id"]), senior.headers


async def _psa_push(acme: Tenant, handoff_id: uuid.UUID, headers: dict[str, str]) -> dict[str, Any]:
    response = await acme.client.post(f"{API}/handoffs/{handoff_id}/psa-push", headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _delivery(db: asyncpg.Connection, handoff_id: uuid.UUID, channel: str) -> asyncpg.Record | None:
    found: asyncpg.Record | None = await db.fetchrow(
        "SELECT status, attempts, last_error FROM deliveries WHERE handoff_id = $1 AND channel = $2",
        handoff_id,
        channel,
    )
    return found


# ------------------------------------------------------------------ the rule itself


@pytest.mark.parametrize(
    ("host", "meant"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("::1", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("2002:7f00:0001::", "2002:7f00:1::"),
        ("example.invalid", None),
        ("deadbeef", None),
    ],
)
def test_an_ip_literal_in_any_spelling_counts_as_the_address_it_means(host: str, meant: str | None) -> None:
    from actors.outbound import ip_literal

    found = ip_literal(host)
    assert (str(found) if found else None) == meant


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("169.254.169.254", "the cloud metadata address"),
        ("fd00:ec2::254", "the cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("2002:c0a8:101::", "a private address"),  # 6to4 of 192.168.1.1
        ("fc00::1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("192.0.2.1", "a reserved address"),  # documentation
        ("198.18.0.1", "a reserved address"),  # benchmarking
        ("240.0.0.1", "a reserved address"),
        ("2001:db8::1", "a reserved address"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_only_global_addresses_pass_the_address_rule(address: str, kind: str | None) -> None:
    import ipaddress

    from actors.outbound import kind_of_refused

    assert kind_of_refused(ipaddress.ip_address(address)) == kind


# ------------------------------------------------------------------ at PUT

LOOPBACK_RULE = f"a loopback address: {RULE_HINT}"


def _refused_forms(port: int) -> list[tuple[str, str]]:
    """(URL, what the 422 must say): every form points at the listener where it can."""
    return [
        (
            "http://8.8.8.8/hook",
            "must use https:// (plain http:// only to an address in BATON_OUTBOUND_ALLOW_CIDRS)",
        ),
        (f"https://user:secret@127.0.0.1:{port}/", "must not carry a user name or password"),
        (f"https://:{port}/hook", "must name a host"),
        (f"http://127.0.0.1:{port}/hook", f"resolves to 127.0.0.1, {LOOPBACK_RULE}"),
        (f"https://2130706433:{port}/hook", f"resolves to 127.0.0.1, {LOOPBACK_RULE}"),
        (f"https://0x7f000001:{port}/hook", f"resolves to 127.0.0.1, {LOOPBACK_RULE}"),
        (f"https://0177.0.0.1:{port}/hook", f"resolves to 127.0.0.1, {LOOPBACK_RULE}"),
        (f"https://127.1:{port}/hook", f"resolves to 127.0.0.1, {LOOPBACK_RULE}"),
        (f"https://localhost:{port}/hook", f"resolves to 127.0.0.1, {LOOPBACK_RULE}"),
        (f"https://[::1]:{port}/hook", f"resolves to ::1, {LOOPBACK_RULE}"),
        (f"https://[::ffff:127.0.0.1]:{port}/hook", f"resolves to ::ffff:7f00:1, {LOOPBACK_RULE}"),
        (f"https://[2002:7f00:0001::]:{port}/hook", f"resolves to 2002:7f00:1::, {LOOPBACK_RULE}"),
        (f"https://0:{port}/hook", f"resolves to 0.0.0.0, an unspecified address: {RULE_HINT}"),
        (
            "https://169.254.169.254/latest/meta-data/",
            f"resolves to 169.254.169.254, the cloud metadata address: {RULE_HINT}",
        ),
        (
            "https://[fd00:ec2::254]/latest/",
            f"resolves to fd00:ec2::254, the cloud metadata address: {RULE_HINT}",
        ),
        ("https://[fe80::1]/", f"resolves to fe80::1, a link-local address: {RULE_HINT}"),
        ("https://10.0.0.8/", f"resolves to 10.0.0.8, a private address: {RULE_HINT}"),
        ("https://172.16.5.4/", f"resolves to 172.16.5.4, a private address: {RULE_HINT}"),
        ("https://192.168.1.1/", f"resolves to 192.168.1.1, a private address: {RULE_HINT}"),
        ("https://[fc00::1]/", f"resolves to fc00::1, a private address: {RULE_HINT}"),
        ("https://100.64.0.1/", f"resolves to 100.64.0.1, a shared (carrier-grade NAT) address: {RULE_HINT}"),
        ("https://224.0.0.1/", f"resolves to 224.0.0.1, a multicast address: {RULE_HINT}"),
        ("https://192.0.2.10/", f"resolves to 192.0.2.10, a reserved address: {RULE_HINT}"),
        ("https://nowhere.invalid/hook", "has a host, nowhere.invalid, that does not resolve"),
    ]


async def test_a_put_of_any_non_global_destination_is_422_naming_the_rule_and_stores_nothing(
    strict: Tenant, db: asyncpg.Connection, listener: RecordingListener
) -> None:
    channel_id, connection_id = uuid.uuid4(), uuid.uuid4()
    # A global address is fine (an IP literal: nothing is looked up, nothing is called).
    good_channel = await strict.put(
        f"/channels/{channel_id}", {"kind": "slack", "url": "https://8.8.8.8/services/x"}
    )
    good_psa = await strict.put(
        f"/psa-connections/{connection_id}",
        {"kind": "connectwise", "base_url": "https://[2606:4700::1111]", "credentials": {"client_id": "c"}},
    )
    assert (good_channel.status_code, good_psa.status_code) == (201, 201), (good_channel.text, good_psa.text)
    before = await database_fingerprint(db)

    wrong: list[str] = []
    for url, says in _refused_forms(listener.port):
        for path, body, field in (
            (f"/channels/{channel_id}", {"kind": "slack", "url": url}, "url"),
            (
                f"/psa-connections/{connection_id}",
                {"kind": "connectwise", "base_url": url, "credentials": {"client_id": "c"}},
                "base_url",
            ),
        ):
            response = await strict.put(path, body)
            detail = response.json().get("detail", "")
            if response.status_code != 422 or detail != f"{field} {says}":
                wrong.append(f"{field}={url}: {response.status_code} {detail!r}")
            else:
                assert_problem(response, 422)

    assert wrong == []
    assert await database_fingerprint(db) == before  # the good rows kept their URLs
    assert listener.contacted == 0


# ------------------------------------------------------------------ at call time


async def test_a_worker_never_contacts_stored_loopback_webhooks_and_fails_each_once_with_a_sanitized_error(
    baton: BatonProcesses, strict: Tenant, db: asyncpg.Connection, listener: RecordingListener
) -> None:
    port = listener.port
    slack = await _stored_channel(
        db, strict, "slack", f"https://2130706433:{port}/services/T0/B0/slacksecret"
    )
    # A name that resolves to loopback when the message is sent: the check is at connect time.
    teams = await _stored_channel(db, strict, "teams", f"https://localhost:{port}/workflows/teamssecret")
    handoff_id, senior = await _escalated(strict)
    worker = baton.worker(env=worker_env(ALLOW_NOTHING))

    async def both_failed() -> list[asyncpg.Record] | None:
        rows = await db.fetch(
            "SELECT recipient, status, attempts, last_error FROM deliveries "
            "WHERE handoff_id = $1 AND channel IN ('slack', 'teams') AND status = 'failed' ORDER BY channel",
            handoff_id,
        )
        return rows if len(rows) == 2 else None

    rows = await eventually(both_failed, WAIT_S, "both webhook deliveries to fail", worker.log)
    assert [(r["recipient"], r["attempts"], r["last_error"]) for r in rows] == [
        (str(slack), 1, "Slack webhook: destination refused: resolves to a loopback address"),
        (str(teams), 1, "Teams webhook: destination refused: resolves to a loopback address"),
    ]
    assert listener.contacted == 0
    shown = await strict.client.get(f"{API}/handoffs/{handoff_id}/deliveries", headers=senior)
    assert shown.status_code == 200, shown.text
    assert "destination refused: resolves to a loopback address" in shown.text
    assert "secret" not in shown.text


async def test_a_psa_push_from_the_web_never_contacts_a_stored_loopback_base_url(
    strict: Tenant, db: asyncpg.Connection, listener: RecordingListener
) -> None:
    credentials = {"company_id": "acme", "public_key": "pub", "private_key": "privKEY456", "client_id": "cw"}
    connection_id = await _stored_psa(
        db, strict, "connectwise", f"https://127.1:{listener.port}", credentials
    )
    handoff_id, senior = await _escalated(strict, connection_id)

    pushed = await _psa_push(strict, handoff_id, senior)

    refused = "ConnectWise note: destination refused: resolves to a loopback address"
    assert (pushed["psa_push_status"], pushed["psa_push_error"]) == ("failed", refused)
    delivery = await _delivery(db, handoff_id, "psa")
    assert delivery is not None and (delivery["status"], delivery["attempts"]) == ("failed", 1)

    # The legacy shim pushes in the web too, through the same gate.
    tech = strict.people[0]
    session_id = await strict.session(
        tech, **DIAGNOSTIC_SESSION, psa_ticket_id="4343", psa_connection_id=str(connection_id)
    )
    shim = await strict.client.post(
        f"{API}/sessions/{session_id}/escalate", json={"engineer_notes": "Locked out"}, headers=tech.headers
    )
    assert shim.status_code == 200, shim.text
    assert (shim.json()["psa_push_status"], shim.json()["psa_push_error"]) == ("failed", refused)
    assert listener.contacted == 0


class Redirecting(ThreadedServer):
    """Answers every request with a 302 to ``target``."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._redirect)

    async def _redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": self.target})


async def test_a_redirect_is_never_followed_and_fails_the_push_at_once(
    lenient: Tenant, db: asyncpg.Connection, listener: RecordingListener
) -> None:
    credentials = {"company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "cw"}
    with Redirecting(f"http://127.0.0.1:{listener.port}/stolen") as redirecting:
        connection_id = await _put_psa(lenient, "connectwise", redirecting.url, credentials)
        handoff_id, senior = await _escalated(lenient, connection_id)

        pushed = await _psa_push(lenient, handoff_id, senior)

    assert pushed["psa_push_status"] == "failed"
    assert pushed["psa_push_error"] == "ConnectWise note: HTTP 302 Found (redirects are not followed)"
    delivery = await _delivery(db, handoff_id, "psa")
    assert delivery is not None and (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert len(redirecting.requests) == 1 and listener.contacted == 0


class Leaky(ThreadedServer):
    """Answers every request 500, echoing a secret in its reason phrase and its body."""

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._fail)

    async def _fail(self, request: web.Request) -> web.Response:
        return web.Response(
            status=500, reason=f"Broken {LEAKED}", text=f'{{"error": "bad key", "echo": "{LEAKED}"}}'
        )


async def test_an_error_answer_is_kept_as_a_status_line_never_its_body_or_reason_phrase(
    baton: BatonProcesses, lenient: Tenant, db: asyncpg.Connection
) -> None:
    with Leaky() as leaky:
        channel = await lenient.put(
            f"/channels/{uuid.uuid4()}", {"kind": "slack", "url": f"{leaky.url}/services/x"}
        )
        assert channel.status_code == 201, channel.text
        credentials = {"company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "cw"}
        connection_id = await _put_psa(lenient, "connectwise", leaky.url, credentials)
        handoff_id, senior = await _escalated(lenient, connection_id)

        pushed = await _psa_push(lenient, handoff_id, senior)
        assert pushed["psa_push_error"] == "ConnectWise note: HTTP 500 Internal Server Error"

        worker = baton.worker(env=worker_env(ALLOW_LOOPBACK))

        async def slack_tried() -> asyncpg.Record | None:
            found = await _delivery(db, handoff_id, "slack")
            return found if found is not None and found["attempts"] >= 1 and found["last_error"] else None

        slack = await eventually(slack_tried, WAIT_S, "the webhook's first attempt", worker.log)
        assert slack["last_error"] == "Slack webhook: HTTP 500 Internal Server Error"
        assert leaky.requests_to("POST", "/services/x")

    for path in (f"/handoffs/{handoff_id}/deliveries", f"/handoffs/{handoff_id}"):
        shown = await lenient.client.get(f"{API}{path}", headers=senior)
        assert shown.status_code == 200, shown.text
        assert LEAKED not in shown.text and "bad key" not in shown.text


# ------------------------------------------------------------------ credentials


async def test_a_credential_no_http_header_can_carry_is_refused_at_put_without_being_echoed(
    lenient: Tenant, db: asyncpg.Connection
) -> None:
    before = await database_fingerprint(db)
    cases = [  # (kind, credentials, the field refused, a part of its value)
        (
            "autotask",
            {"username": "api@msp.example", "secret": "s3cr3t-AT\n", "integration_code": "T42"},
            "secret",
            "s3cr3t",
        ),
        (
            "connectwise",
            {"company_id": "acme", "client_id": "cw-client\r\nX-Evil: 1"},
            "client_id",
            "cw-client",
        ),
        ("halopsa", {"client_id": "halo", "client_secret": "tab\tinside\u0085"}, "client_secret", "inside"),
        ("connectwise", {"company_id": "acme", "private_key": "priv-key "}, "private_key", "priv-key"),
    ]
    for kind, credentials, field, part in cases:
        response = await lenient.put(
            f"/psa-connections/{uuid.uuid4()}",
            {"kind": kind, "base_url": "https://127.0.0.1:9", "credentials": credentials},
        )
        body = assert_problem(response, 422)
        assert body["detail"].startswith(f"credentials.{field} "), body
        assert part not in response.text
    assert await database_fingerprint(db) == before


async def test_a_stored_autotask_secret_with_a_line_break_fails_once_and_the_error_never_holds_it(
    baton: BatonProcesses, lenient: Tenant, db: asyncpg.Connection
) -> None:
    with FakeAutotask() as autotask:
        connection_id = await _put_psa(lenient, "autotask", autotask.lookup_url, autotask.credentials)
        # As stored before the rule: the pasted secret kept its line break.
        await db.execute(
            "UPDATE psa_connections SET credentials = jsonb_set(credentials, '{secret}', $2::jsonb) "
            "WHERE id = $1",
            connection_id,
            json.dumps(autotask.credentials["secret"] + "\n"),
        )
        handoff_id, senior = await _escalated(lenient, connection_id)
        worker = baton.worker(env=worker_env(ALLOW_LOOPBACK))

        async def failed() -> asyncpg.Record | None:
            found = await _delivery(db, handoff_id, "psa")
            return found if found is not None and found["status"] == "failed" else None

        delivery = await eventually(failed, WAIT_S, "the PSA push to fail", worker.log)
        assert autotask.requests == []  # the request could not be built: nothing was sent

    uncarriable = "Autotask zone lookup: a credential holds a character an HTTP header cannot carry"
    assert (delivery["attempts"], delivery["last_error"]) == (1, uncarriable)
    pushed = await db.fetchrow(
        "SELECT psa_push_status, psa_push_error FROM session_handoffs WHERE id = $1", handoff_id
    )
    assert (pushed["psa_push_status"], pushed["psa_push_error"]) == ("failed", uncarriable)
    shown = await lenient.client.get(f"{API}/handoffs/{handoff_id}/deliveries", headers=senior)
    assert "s3cr3t" not in shown.text


async def test_a_stored_connectwise_client_id_with_a_line_break_fails_the_web_push_once_without_echoing_it(
    lenient: Tenant, db: asyncpg.Connection
) -> None:
    with FakeConnectWise() as connectwise:
        credentials = {**connectwise.credentials, "client_id": connectwise.credentials["client_id"] + "\r\n"}
        connection_id = await _stored_psa(db, lenient, "connectwise", connectwise.url, credentials)
        handoff_id, senior = await _escalated(lenient, connection_id)

        pushed = await _psa_push(lenient, handoff_id, senior)

        assert connectwise.requests == []
    assert (
        pushed["psa_push_error"]
        == "ConnectWise note: a credential holds a character an HTTP header cannot carry"
    )
    assert "cw-client" not in json.dumps(pushed)
    delivery = await _delivery(db, handoff_id, "psa")
    assert delivery is not None and (delivery["status"], delivery["attempts"]) == ("failed", 1)


# ------------------------------------------------------------------ what the allow list opens


async def test_plain_http_reaches_an_allowed_network_but_not_a_zone_outside_it(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    """Allowed: 127.0.0.1 only. The Autotask lookup there works over plain http; the zone it
    answers with, on 127.0.0.2, is refused at connect time and never contacted."""
    server = baton.serve(env={"BATON_OUTBOUND_ALLOW_CIDRS": "127.0.0.1/32"})
    with (
        RecordingListener("127.0.0.2") as elsewhere,
        FakeConnectWise() as connectwise,
        FakeAutotask() as autotask,
    ):
        autotask.zone_root = f"http://127.0.0.2:{elsewhere.port}/zone/ATServicesRest/"
        async for acme in _tenant_on(server, db):
            cw = await _put_psa(acme, "connectwise", connectwise.url, connectwise.credentials)
            at = await _put_psa(acme, "autotask", autotask.lookup_url, autotask.credentials)
            cw_handoff, senior = await _escalated(acme, cw)
            tech = acme.people[0]
            at_session = await acme.session(
                tech, **DIAGNOSTIC_SESSION, psa_ticket_id="77", psa_connection_id=str(at)
            )
            at_handoff = uuid.UUID((await acme.handed_off(tech, at_session, "escalate"))["id"])

            cw_pushed = await _psa_push(acme, cw_handoff, senior)
            at_pushed = await _psa_push(acme, at_handoff, senior)

        assert cw_pushed["psa_push_status"] == "pushed" and len(connectwise.notes_on(4242)) == 1
        assert (
            at_pushed["psa_push_error"]
            == "Autotask note fields: destination refused: resolves to a loopback address"
        )
        assert len(autotask.requests_to("GET", "/zoneInformation")) == 1
        assert elsewhere.contacted == 0


async def test_an_allowed_endpoint_is_reachable_and_its_neighbour_ports_are_not(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    """BATON_OUTBOUND_ALLOW_ENDPOINTS (what ``baton dev`` sets for its demo PSA) lets one
    ip:port through, over plain http; the next port on the same address stays refused."""
    with RecordingListener() as neighbour, FakeConnectWise() as connectwise:
        endpoint = connectwise.url.removeprefix("http://").split("/")[0]
        server = baton.serve(env={**ALLOW_NOTHING, "BATON_OUTBOUND_ALLOW_ENDPOINTS": endpoint})
        async for acme in _tenant_on(server, db):
            allowed = await _put_psa(acme, "connectwise", connectwise.url, connectwise.credentials)
            refused = await acme.put(
                f"/psa-connections/{uuid.uuid4()}",
                {
                    "kind": "connectwise",
                    "base_url": f"http://127.0.0.1:{neighbour.port}",
                    "credentials": connectwise.credentials,
                },
            )
            handoff, senior = await _escalated(acme, allowed)
            pushed = await _psa_push(acme, handoff, senior)
        assert pushed["psa_push_status"] == "pushed" and len(connectwise.notes_on(4242)) == 1
        assert_problem(refused, 422)
        assert neighbour.contacted == 0


def _private_ca(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """An MSP's own CA (openssl CLI) and a server context with its certificate for localhost."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a private CA"

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Acme MSP CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (folder / "server.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return folder / "ca.pem", context


async def test_the_outbound_ca_bundle_is_trusted_for_https_and_the_host_name_is_still_verified(
    baton: BatonProcesses, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """The fake's certificate names localhost only: Baton connects to the judged address
    (127.0.0.1) and still checks the certificate against the URL's host name."""
    ca_bundle, server_context = _private_ca(tmp_path)
    connectwise = FakeConnectWise()
    connectwise.ssl_context = server_context
    by_name, by_address = f"https://localhost:{connectwise.port}", f"https://127.0.0.1:{connectwise.port}"
    trusting = baton.serve(env={**ALLOW_LOOPBACK, "BATON_OUTBOUND_CA_BUNDLE": str(ca_bundle)})
    untrusting = baton.serve(env=ALLOW_LOOPBACK)
    errors: list[str | None] = []
    with connectwise:
        for server, base_url in ((trusting, by_name), (trusting, by_address), (untrusting, by_name)):
            async for acme in _tenant_on(server, db):
                connection_id = await _put_psa(acme, "connectwise", base_url, connectwise.credentials)
                handoff_id, senior = await _escalated(acme, connection_id)
                errors.append((await _psa_push(acme, handoff_id, senior))["psa_push_error"])

    assert errors == [
        None,
        "ConnectWise note: ConnectError: the server's certificate is for another host",
        "ConnectWise note: ConnectError: the server's certificate is not trusted",
    ]
    assert len(connectwise.notes) == 1
