"""Chaos: 300 escalations into a local cluster (2 web + 2 worker processes, ``baton dev``)
while a worker pool is SIGKILLed twice, a web replica is restarted and Redis is restarted.

Afterwards every committed hand-off has its assessment, its PSA note and its e-mails
exactly once, and a websocket client that followed along (reconnecting with ``since``)
saw every ``handoff_created`` exactly once. The tally is printed; lost and duplicated
must be 0.

The client behaves as a host app should: it retries a failed request on the other
replica with the same ``Idempotency-Key``, so a create whose answer was lost is not
made twice.

E-mails are counted as messages (by Message-ID, one per delivery row), as the seniors'
mail systems see them. SMTP cannot be asked whether it took a message, so a worker
SIGKILLed between the server's acceptance and its own "sent" mark sends that message
again after the restart (docs/background.md: at-least-once, same Message-ID); those
copies get a row of their own, and each must be explained by a kill right after its
first copy. (Unexplained copies were once a real bug: a 250 to DATA arriving after the
command timeout, the message then sent again. docs/background.md.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from inbox import keys
from tests.actors.conftest import psa_base_url, settled, worker_env
from tests.api.conftest import API, Person, new_tenant
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.psa import FakeConnectWise
from tests.fakes.smtp import FakeSmtp

from .cluster import Cluster

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

ESCALATIONS = 300
SENIORS = 3  # e-mails per escalation
CONCURRENCY = 6
SETTLE_TIMEOUT_S = 120.0
REQUEST_ATTEMPTS = 12
# Quick to notice a killed worker (the defaults take about 30 s per crash).
CHAOS_ENV = {
    "BATON_WORKER_HEARTBEAT_TIMEOUT_MS": "3000",
    "BATON_WORKER_MAINTENANCE_CHANCE_PER_MILLION": "500000",
    "BATON_DELIVERY_TIMEOUT_S": "2",
    # Far above how late a loaded machine answers, and it keeps an e-mail's lease (what a
    # killed worker's rows wait before they are sent again) at 51 s, inside the settling.
    "BATON_SMTP_DATA_TIMEOUT_S": "10",
    "BATON_OUTBOX_SWEEP_INTERVAL_S": "0.5",
    # A send lost with a message (a batch enqueued just before Redis restarted) is
    # found by the deliveries sweep; at the default it would wait 15 minutes.
    "BATON_DELIVERY_SWEEP_AFTER_S": "20",
}
# What happens, at how many escalations created.
CHAOS_AT = {30: "kill a worker", 80: "restart web 0", 150: "restart Redis", 220: "kill the worker again"}


@dataclass
class Follower:
    """A senior's inbox, reconnecting with ``since`` whenever it is cut off."""

    urls: list[str]
    token: str
    created: list[str] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    resyncs: int = 0
    connects: int = 0
    since: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        replica = 0
        while not self.stop.is_set():
            url = self.urls[replica].replace("http://", "ws://") + f"{API}/inbox"
            if self.since:
                url += f"?since={self.since}"
            try:
                async with connect(url, open_timeout=5, close_timeout=2) as socket:
                    await socket.send(json.dumps({"type": "auth", "token": self.token}))
                    self.connects += 1
                    await self._read(socket)
            except ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, TimeoutError, InvalidHandshake):
                self.close_codes.append(None)
            replica = 1 - replica
            if not self.stop.is_set():
                await asyncio.sleep(0.2)

    async def _read(self, socket: Any) -> None:
        reader = asyncio.ensure_future(self._frames(socket))
        stopper = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, stopper):
            task.cancel()
        if reader in done:
            reader.result()  # the ConnectionClosed that ended it

    async def _frames(self, socket: Any) -> None:
        async for raw in socket:
            frame = json.loads(raw)
            if frame["type"] == "hello":
                if self.since is None:
                    self.since = frame["last_event_id"]
                self.ready.set()
            elif frame["type"] == "resync":
                self.resyncs += 1
            else:
                self.since = frame["id"]
                if frame["type"] == "handoff_created":
                    self.created.append(frame["handoff_id"])


class Replicas:
    """Requests spread over both replicas; a failed one is tried again on the other."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.clients = clients
        self.retries = 0
        self._next = 0

    async def call(self, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]) -> httpx.Response:
        start, self._next = self._next, self._next + 1
        last: object = None
        for attempt in range(REQUEST_ATTEMPTS):
            client = self.clients[(start + attempt) % len(self.clients)]
            try:
                response = await send(client)
                if response.status_code < 500 and response.status_code != 429:
                    return response
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = exc
            self.retries += 1
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        raise AssertionError(f"gave up after {REQUEST_ATTEMPTS} attempts: {last!r}")


@dataclass
class Tally:
    rows: list[tuple[str, int, int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what explains a failure

    def add(self, what: str, expected: set[Any], delivered: Counter[Any]) -> None:
        sent = len(expected & set(delivered))
        lost = len(expected - set(delivered))
        duplicated = sum(n - 1 for key, n in delivered.items() if n > 1) + len(set(delivered) - expected)
        self.rows.append((what, sent, lost, duplicated))

    def render(self, header: str) -> str:
        lines = [header, f"  {'':<34}{'sent':>6}{'lost':>6}{'duplicated':>12}"]
        lines += [f"  {what:<34}{sent:>6}{lost:>6}{dup:>12}" for what, sent, lost, dup in self.rows]
        return "\n".join(lines + self.notes)

    def failures(self) -> list[str]:
        return [what for what, _, lost, dup in self.rows if lost or dup]


async def test_chaos_every_escalation_is_delivered_exactly_once(
    db: asyncpg.Connection,
    tmp_path: Path,
    ai: FakeAnthropic,
    smtp: FakeSmtp,
    connectwise: FakeConnectWise,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    redis_server = EmbeddedRedis(tmp_path / "redis", free_port(), durable=True)
    redis_server.start()
    cluster = Cluster(
        worker_env(ai.env(), smtp.env(), CHAOS_ENV, REDIS_URL=redis_server.url), tmp_path / "cluster.log"
    )
    try:
        cluster.start()
        tally, timeline = await _run(cluster, redis_server, db, ai, smtp, connectwise, started)
    except BaseException:
        print(f"--- cluster log (end) ---\n{cluster.log()[-15000:]}")
        raise
    finally:
        cluster.stop()
        redis_server.stop()
    duration_s = time.monotonic() - started
    report = tally.render(f"chaos tally: {ESCALATIONS} escalations in {duration_s:.0f} s; {timeline}")
    with capsys.disabled():
        print("\n" + report)
    assert not tally.failures(), report


async def _run(
    cluster: Cluster,
    redis_server: EmbeddedRedis,
    db: asyncpg.Connection,
    ai: FakeAnthropic,
    smtp: FakeSmtp,
    connectwise: FakeConnectWise,
    started: float,
) -> tuple[Tally, str]:
    clients = [httpx.AsyncClient(base_url=url, timeout=10) for url in cluster.urls]
    replicas = Replicas(clients)
    try:
        acme = await new_tenant(db, clients[0], "Acme MSP")
        tech = await acme.user(name="Tess Tech")
        seniors = [await acme.user(role, name=f"Senior {role}") for role in ("engineer", "admin", "owner")]
        connection_id = uuid.uuid4()
        psa = {"kind": "connectwise", "base_url": psa_base_url(connectwise)}
        psa["credentials"] = connectwise.credentials
        answer = await acme.put(f"/psa-connections/{connection_id}", psa)
        assert answer.status_code == 201, answer.text
        sessions = await _sessions(replicas, acme.host_app, tech, connection_id)

        token = seniors[0].headers["Authorization"].removeprefix("Bearer ")
        follower = Follower(cluster.urls, token)
        following = asyncio.ensure_future(follower.run())
        await asyncio.wait_for(follower.ready.wait(), 15)

        events: list[str] = []
        kills: list[float] = []
        handoff_ids = await _escalate(replicas, tech, sessions, cluster, redis_server, events, kills, started)
        await _settle(db, acme.account_id, smtp, connectwise, follower, redis_server.url)
        follower.stop.set()
        await asyncio.wait_for(following, 10)

        history = await _stream_events(redis_server.url, acme.account_id)
        fakes = (ai, smtp, connectwise)
        tally = await _tally(db, acme.account_id, handoff_ids, history, *fakes, follower, kills)
        timeline = (
            f"{'; '.join(events)}; {replicas.retries} request retries; websocket: {follower.connects} "
            f"connects, close codes {Counter(follower.close_codes)}, {follower.resyncs} resyncs"
        )
        return tally, timeline
    finally:
        for client in clients:
            await client.aclose()


async def _sessions(
    replicas: Replicas, host_app: dict[str, str], tech: Person, connection_id: uuid.UUID
) -> list[uuid.UUID]:
    """The sessions the host app syncs first, each on its own PSA ticket."""
    ids = [uuid.uuid4() for _ in range(ESCALATIONS)]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def put(n: int, session_id: uuid.UUID) -> None:
        body = {
            "user_id": str(tech.id),
            "problem_summary": f"Chaos problem {n}",
            "problem_domain": "network",
            "steps": [{"step_order": 0, "content": {"text": "Rebooted the firewall"}}],
            "psa_ticket_id": str(10_000 + n),
            "psa_connection_id": str(connection_id),
        }
        async with gate:
            answer = await replicas.call(
                lambda c: c.put(f"{API}/sessions/{session_id}", json=body, headers=host_app)
            )
        assert answer.status_code in (200, 201), answer.text

    await asyncio.gather(*(put(n, session_id) for n, session_id in enumerate(ids)))
    return ids


async def _escalate(
    replicas: Replicas,
    tech: Person,
    sessions: list[uuid.UUID],
    cluster: Cluster,
    redis_server: EmbeddedRedis,
    events: list[str],
    kills: list[float],
    started: float,
) -> dict[int, str]:
    handoff_ids: dict[int, str] = {}
    todo = list(enumerate(sessions))
    chaos: list[asyncio.Future[None]] = []

    def restart_redis() -> None:
        redis_server.stop()
        redis_server.start()

    actions: dict[str, Callable[[], object]] = {
        "kill a worker": cluster.kill_newest_worker,
        # The same pool: the one its supervisor restarted, the newest.
        "kill the worker again": cluster.kill_newest_worker,
        "restart web 0": lambda: cluster.restart_web(0),
        "restart Redis": restart_redis,
    }

    async def hurt(what: str) -> None:
        at = time.monotonic() - started
        await asyncio.to_thread(actions[what])
        if what.startswith("kill"):
            kills.append(time.monotonic())
        events.append(f"{what} at {at:.0f} s (took {time.monotonic() - started - at:.1f} s)")

    async def escalate_some() -> None:
        while todo:
            n, session_id = todo.pop(0)
            headers = {**tech.headers, "Idempotency-Key": f"chaos-{n}"}
            body = {"intent": "escalate", "engineer_notes": f"Chaos {n}", "priority": "high"}
            path = f"{API}/sessions/{session_id}/handoffs"
            answer = await replicas.call(lambda c, p=path, b=body, h=headers: c.post(p, json=b, headers=h))
            assert answer.status_code == 201, answer.text
            handoff_ids[n] = answer.json()["id"]
            what = CHAOS_AT.get(len(handoff_ids))
            if what:
                chaos.append(asyncio.ensure_future(hurt(what)))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(escalate_some() for _ in range(CONCURRENCY)))
    await asyncio.gather(*chaos)
    return handoff_ids


async def _where_is_it(db: asyncpg.Connection, account_id: uuid.UUID, redis_url: str) -> str:
    """For a failure: where the unfinished hand-offs' jobs are, in Postgres and in Redis."""
    stuck = await db.fetch(
        "SELECT id, assessment_status FROM session_handoffs WHERE account_id = $1 "
        "AND assessment_status <> 'ready' LIMIT 5",
        account_id,
    )
    unsent = await db.fetch(
        "SELECT handoff_id AS id, channel, status AS assessment_status, attempts, last_error, updated_at "
        "FROM deliveries WHERE account_id = $1 AND status <> 'sent' LIMIT 5",
        account_id,
    )
    lines = [f"unsent delivery: {dict(row)}" for row in unsent]
    stuck = [*stuck, *unsent]
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        for row in stuck:
            hid = str(row["id"])
            outbox = await db.fetch(
                "SELECT actor_name, sent_at, attempts FROM outbox WHERE payload->>'handoff_id' = $1", hid
            )
            lines.append(f"hand-off {hid} {row['assessment_status']}: outbox {[dict(r) for r in outbox]}")
            async for key in client.scan_iter(match="baton:*"):
                kind = await client.type(key)
                if kind == b"hash":
                    for field, value in (await client.hgetall(key)).items():
                        if hid.encode() in value:
                            message = json.loads(value)
                            options = message.get("options", {})
                            lines.append(
                                f"  in {key!r} as {field!r}: {message.get('actor_name')} "
                                f"retries={options.get('retries')} eta={options.get('eta')} "
                                f"(now {int(time.time() * 1000)})"
                            )
                            for other in [k async for k in client.scan_iter(match="baton:*")]:
                                other_kind = await client.type(other)
                                if other_kind == b"set" and await client.sismember(other, field):
                                    lines.append(f"    acked-pending in {other!r}")
                                if other_kind == b"list" and field in await client.lrange(other, 0, -1):
                                    lines.append(f"    queued in {other!r}")
                                if other_kind == b"zset" and await client.zscore(other, field) is not None:
                                    lines.append(f"    in zset {other!r}")
        heartbeats = await client.zrange("baton:__heartbeats__", 0, -1, withscores=True)
        lines.append(f"heartbeats: {heartbeats}")
    finally:
        await client.aclose()
    return "\n".join(lines)


async def _settle(
    db: asyncpg.Connection,
    account_id: uuid.UUID,
    smtp: FakeSmtp,
    connectwise: FakeConnectWise,
    follower: Follower,
    redis_url: str,
) -> None:
    """Wait until the ledger says everything went out, then until nothing more arrives."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    done = ""
    while time.monotonic() < deadline:
        row = await db.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM session_handoffs
               WHERE account_id = $1 AND assessment_status = 'ready') AS assessed,
              (SELECT count(*) FROM deliveries
               WHERE account_id = $1 AND channel = 'psa' AND status = 'sent') AS notes,
              (SELECT count(*) FROM deliveries
               WHERE account_id = $1 AND channel = 'email' AND status = 'sent') AS emails
            """,
            account_id,
        )
        assert row is not None
        done = f"assessed {row['assessed']}, PSA notes {row['notes']}, e-mails {row['emails']}"
        if tuple(row) == (ESCALATIONS, ESCALATIONS, SENIORS * ESCALATIONS):
            break
        await asyncio.sleep(0.5)
    else:
        where = await _where_is_it(db, account_id, redis_url)
        raise AssertionError(f"not settled within {SETTLE_TIMEOUT_S:.0f} s: {done}\n{where}")

    async def observed() -> tuple[int, int, int]:
        return len(smtp.messages()), len(connectwise.notes), len(follower.created)

    await settled(observed, quiet_s=3.0)


async def _tally(
    db: asyncpg.Connection,
    account_id: uuid.UUID,
    handoff_ids: dict[int, str],
    history: list[dict[str, Any]],
    ai: FakeAnthropic,
    smtp: FakeSmtp,
    connectwise: FakeConnectWise,
    follower: Follower,
    kills: list[float],
) -> Tally:
    tally = Tally()
    expected = set(handoff_ids.values())
    committed = Counter(
        str(row["id"])
        for row in await db.fetch(
            "SELECT id FROM session_handoffs WHERE account_id = $1 AND intent = 'escalate'", account_id
        )
    )
    tally.add("hand-offs committed", expected, committed)

    ready = "SELECT id FROM session_handoffs WHERE account_id = $1 AND assessment_status = 'ready'"
    assessed = Counter(str(row["id"]) for row in await db.fetch(ready, account_id))
    tally.add("assessments stored", expected, assessed)
    tally.add(
        "handoff_assessment_ready published",
        expected,
        Counter(e["handoff_id"] for e in history if e["type"] == "handoff_assessment_ready"),
    )

    ticket_of = {str(10_000 + n): handoff_ids[n] for n in handoff_ids}
    notes = Counter(ticket_of.get(str(n.ticket_id), f"ticket {n.ticket_id}") for n in connectwise.notes)
    tally.add("PSA notes", expected, notes)

    recipients = {
        row["id"]: (str(row["handoff_id"]), row["recipient"])
        for row in await db.fetch(
            "SELECT id, handoff_id, recipient FROM deliveries WHERE account_id = $1 AND channel = 'email'",
            account_id,
        )
    }
    expected_mail = {(hid, f"{p}") for hid in expected for p in await _senior_addresses(db, account_id)}
    # A message is its Message-ID (one per delivery row), as the recipient's mail system
    # sees it. Copies of one message are counted apart, below.
    copies: dict[uuid.UUID, list[float]] = {}
    for message in smtp.messages():
        delivery_id = uuid.UUID(str(message.message["Message-ID"]).strip("<>").partition("@")[0])
        copies.setdefault(delivery_id, []).append(message.received_at)
    mails = Counter(recipients.get(d, ("unknown", str(d))) for d in copies)
    tally.add("e-mails (hand-off × senior)", expected_mail, mails)
    from actors.deliveries import INTERRUPTED_NOTE  # here: actors bind to REDIS_URL on import

    interrupted = {
        row["id"]
        for row in await db.fetch(
            "SELECT id FROM deliveries WHERE account_id = $1 AND channel = 'email' AND last_error = $2",
            account_id,
            INTERRUPTED_NOTE,
        )
    }
    _check_retransmissions(tally, copies, kills, interrupted)

    tally.add("handoff_created on the websocket", expected, Counter(follower.created))
    calls = len(ai.calls)
    tally.rows.append((f"(AI calls made: {calls})", calls, 0, 0))
    return tally


def _check_retransmissions(
    tally: Tally, copies: dict[uuid.UUID, list[float]], kills: list[float], interrupted: set[uuid.UUID]
) -> None:
    """SMTP cannot be asked whether it took a message, so a sender killed between the
    server's 250 and its own "sent" mark sends that message again after the restart
    (docs/background.md: e-mail is at-least-once, with a stable Message-ID). Such a copy
    is listed when the ledger took its row over from a crashed attempt (the row keeps
    the "interrupted" note) and a worker was killed between the two copies; any other
    copy is a real duplicate, and fails."""
    explained = unexplained = 0
    for delivery_id, times in copies.items():
        ordered = sorted(times)
        for first, again in itertools.pairwise(ordered):
            if delivery_id in interrupted and any(first <= kill <= again for kill in kills):
                explained += 1
            else:
                unexplained += 1
                tally.notes.append(f"  e-mail {delivery_id} sent again with no crash to explain it")
    tally.rows.append(("  same message resent after a kill", explained, 0, unexplained))


async def _senior_addresses(db: asyncpg.Connection, account_id: uuid.UUID) -> list[str]:
    rows = await db.fetch(
        "SELECT lower(email) AS email FROM users WHERE account_id = $1 AND account_role <> 'technician'",
        account_id,
    )
    return [row["email"] for row in rows]


async def _stream_events(redis_url: str, account_id: uuid.UUID) -> list[dict[str, Any]]:
    """The account's inbox history, read from the cluster's Redis."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(keys.stream(account_id), "-", "+")
    finally:
        await client.aclose()
    return [json.loads(fields[b"e"]) for _, fields in entries]
