"""Create and claim through the API, side by side with raw asyncpg running the same SQL.

    uv run python bench/api.py [--quick]

Starts an embedded Postgres (durable, as ``baton dev`` runs it) and Redis in a temporary
folder, migrates, and runs one ``baton serve``. Then, for create (an escalation with an
Idempotency-Key, ringing five seniors) and claim (an uncontended claim of an open
hand-off), at concurrency 1 and 50: the API through aiohttp (httpx costs ~20x the client
CPU, which on two cores is taken from the server), and raw asyncpg running the very SQL
the server runs (``server``'s own statements and transaction body, so the two cannot
drift apart) on a pool of the server's size. Writes throughput, p50, p99, the API/raw
ratios and the server's CPU per operation to ``bench/results/api.json``.

What the API does beyond the raw SQL, and so what the ratios price: HTTP and JSON,
validation, JWT decoding, the framework's routing, guards and injection, the rate limit
(one Redis script) and, after commit, the inbox publish (one more). The outbox jobs need
no hand-over: the commit's NOTIFY wakes the workers' relays.

After each comparison, ``GET /health`` through the same client and server gives the HTTP
floor: what one bare request costs here. At concurrency 1 it bounds the ratio any HTTP
API could reach over the raw SQL (``throughput_ratio_ceiling_http_only``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cli.embedded_postgres import EmbeddedPostgres  # noqa: E402
from cli.embedded_redis import EmbeddedRedis  # noqa: E402
from cli.processes import free_port  # noqa: E402
from server import auth  # noqa: E402
from server.handoffs import create, idempotency  # noqa: E402
from server.lifespan import POOL_MAX_SIZE  # noqa: E402
from server.schemas.handoffs import HandoffCreate  # noqa: E402
from server.tokens import mint_user_token  # noqa: E402
from tables.enums import SENIOR_ROLES  # noqa: E402
from tables.pool import POOL_OPTIONS  # noqa: E402
from tables.queries import people  # noqa: E402
from tables.queries.handoffs import claim as claim_query  # noqa: E402

RESULTS_PATH = REPO_ROOT / "bench" / "results" / "api.json"
CONCURRENCIES = (1, 50)
OPS = {1: 300, 50: 3000}  # measured operations per (operation, concurrency, side)
QUICK_OPS = {1: 50, 50: 500}
WARMUP_OPS = 100
SLICES = 4  # raw and API alternate in this many slices of each measurement
SIDES = ("raw", "api")
SENIORS = 5  # rung by every escalation
CLAIMERS = 50
SERVER_START_TIMEOUT_S = 30.0
RATE_LIMIT_OFF_PER_MINUTE = 100_000_000
# Targets of the issue: API throughput at least this share of raw, p99 at most this multiple.
TARGETS = {"create": 0.5, "claim": 0.6}
P99_MAX_MULTIPLE_AT_50 = 2.0

CREATE_BODY = {"intent": "escalate", "engineer_notes": "Tried everything on the runbook.", "priority": "high"}


# ------------------------------------------------------------------ the stage


@dataclass
class Stage:
    database_url: str
    redis_url: str
    base_url: str
    jwt_secret: str
    server_pid: int


@contextmanager
def stage(folder: Path, profile_to: Path | None = None) -> Iterator[Stage]:
    """Embedded Postgres + Redis, migrated, and one ``baton serve``; all stopped after.

    ``profile_to``: run the server under cProfile and write its stats there on stop."""
    postgres = EmbeddedPostgres(folder / "postgres", free_port(), durable=True)
    redis_server = EmbeddedRedis(folder / "redis", free_port(), durable=False)
    server: subprocess.Popen[bytes] | None = None
    postgres.start()
    try:
        redis_server.start()
        jwt_secret = secrets.token_hex(32)
        env = {
            **os.environ,
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "BATON_JWT_SECRET": jwt_secret,
            "BATON_DATA_DIR": str(folder),
            # Access logs off: the bench measures the API, not the terminal.
            "BATON_LOG_LEVEL": "WARNING",
            # One user writes thousands a minute here; the limiter still runs on every
            # write (its cost is measured), it just never refuses.
            "BATON_RATE_LIMIT_WRITES_PER_MINUTE": str(RATE_LIMIT_OFF_PER_MINUTE),
        }
        subprocess.run([sys.executable, "-m", "cli", "migrate"], cwd=REPO_ROOT, env=env, check=True)
        port = free_port()
        log = open(folder / "serve.log", "wb")  # noqa: SIM115 (closed with the process)
        profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
        server = subprocess.Popen(
            [sys.executable, *profiler, "-m", "cli", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        _wait_for_health(server, base_url, folder / "serve.log")
        yield Stage(postgres.url, redis_server.url, base_url, jwt_secret, server.pid)
    finally:
        if server is not None:
            # uvicorn re-raises the signal it stopped on; SIGINT becomes KeyboardInterrupt,
            # which lets cProfile write its stats, where SIGTERM would end the process first.
            server.send_signal(signal.SIGINT if profile_to else signal.SIGTERM)
            server.wait(15)
        redis_server.stop()
        postgres.stop()


def _wait_for_health(server: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"baton serve exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"baton serve did not answer /health within {SERVER_START_TIMEOUT_S:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the data


@dataclass
class Account:
    id: uuid.UUID
    creator_id: uuid.UUID
    creator_name: str
    claimer_ids: list[uuid.UUID]
    claimer_names: dict[uuid.UUID, str]


async def seed_account(conn: asyncpg.Connection) -> Account:
    account_id, creator_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Bench MSP')", account_id)
    users = [(creator_id, "Bench Tech", "technician")]
    users += [(uuid.uuid4(), f"Senior {i}", SENIOR_ROLES[i % len(SENIOR_ROLES)]) for i in range(SENIORS)]
    claimers = [(uuid.uuid4(), f"Claimer {i}", "technician") for i in range(CLAIMERS)]
    await conn.executemany(
        "INSERT INTO users (id, account_id, email, name, account_role) VALUES ($1, $2, $3, $4, $5)",
        [
            (uid, account_id, f"{uid.hex[:10]}@bench.example", name, role)
            for uid, name, role in users + claimers
        ],
    )
    return Account(
        account_id, creator_id, "Bench Tech", [c[0] for c in claimers], {c[0]: c[1] for c in claimers}
    )


async def active_sessions(conn: asyncpg.Connection, account: Account, count: int) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "INSERT INTO ai_sessions (account_id, user_id, problem_summary, problem_domain, step_count, "
        "confidence_tier) SELECT $1, $2, 'VPN drops every hour #' || g, 'network', 3, 'medium' "
        "FROM generate_series(1, $3) AS g RETURNING id",
        account.id,
        account.creator_id,
        count,
    )
    return [row["id"] for row in rows]


async def open_handoffs(conn: asyncpg.Connection, account: Account, count: int) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "WITH s AS (INSERT INTO ai_sessions (account_id, user_id, status, problem_summary) "
        "  SELECT $1, $2, 'paused', 'Parked #' || g FROM generate_series(1, $3) AS g RETURNING id) "
        "INSERT INTO session_handoffs (session_id, account_id, handed_off_by, intent, state, "
        "  assessment_status) SELECT id, $1, $2, 'park', 'open', 'not_applicable' FROM s RETURNING id",
        account.id,
        account.creator_id,
        count,
    )
    return [row["id"] for row in rows]


# ------------------------------------------------------------------ one side, one operation


Operation = Callable[[int], Awaitable[None]]  # the i-th operation of a run


@dataclass
class Measurement:
    ops: int
    seconds: float
    latencies_ms: list[float]

    def add(self, other: Measurement) -> None:
        self.ops += other.ops
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies_ms)

        def percentile(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        return {
            "throughput_per_s": round(self.ops / self.seconds, 1),
            "p50_ms": round(percentile(0.50), 2),
            "p99_ms": round(percentile(0.99), 2),
        }


async def measure(operation: Operation, ops: int, concurrency: int, first: int = 0) -> Measurement:
    """``ops`` calls of ``operation(first..first+ops-1)`` by ``concurrency`` workers."""
    next_index = iter(range(first, first + ops))
    latencies: list[float] = []

    async def worker() -> None:
        for i in next_index:
            started = time.perf_counter()
            await operation(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Measurement(ops, time.perf_counter() - started, latencies)


def api_create(
    http: aiohttp.ClientSession, base_url: str, token: str, sessions: list[uuid.UUID]
) -> Operation:
    async def op(i: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bench-{sessions[i]}"}
        async with http.post(
            f"{base_url}/api/v1/sessions/{sessions[i]}/handoffs", json=CREATE_BODY, headers=headers
        ) as r:
            await r.read()
            if r.status != 201:
                raise RuntimeError(f"create answered {r.status}: {await r.text()}")

    return op


def api_claim(
    http: aiohttp.ClientSession, base_url: str, tokens: list[str], handoffs: list[uuid.UUID]
) -> Operation:
    async def op(i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        async with http.post(f"{base_url}/api/v1/handoffs/{handoffs[i]}/claim", headers=headers) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"claim answered {r.status}: {await r.text()}")

    return op


def http_floor(http: aiohttp.ClientSession, base_url: str) -> Operation:
    """``GET /health`` on the same server through the same client: one HTTP round trip
    through uvicorn and Litestar with no auth, database or Redis behind it."""

    async def op(i: int) -> None:
        async with http.get(f"{base_url}/health") as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"/health answered {r.status}")

    return op


async def measure_floor(
    http: aiohttp.ClientSession, base_url: str, concurrency: int, ops: int
) -> dict[str, float]:
    floor = http_floor(http, base_url)
    await measure(floor, WARMUP_OPS, concurrency)
    figures = (await measure(floor, ops, concurrency)).summary()
    print(f"floor  c={concurrency:<3} GET /health {figures}", flush=True)
    return figures


def raw_create(pool: asyncpg.Pool, account: Account, sessions: list[uuid.UUID]) -> Operation:
    """The auth lookup, then the create transaction itself: ``server.handoffs.create``'s
    statements with their parameters, on a plain asyncpg pool (no HTTP, no framework, no
    after-commit publish or hand-over)."""
    request = msgspec.convert(CREATE_BODY, HandoffCreate)
    caller = auth.UserCaller(account.id, account.creator_id, account.creator_name, "technician")

    async def op(i: int) -> None:
        session_id = sessions[i]
        key = f"bench-{session_id}"
        async with pool.acquire() as conn:  # as the auth middleware does, on its own connection
            await people.user_for_request(conn, user_id=account.creator_id)
        async with pool.acquire() as conn, conn.transaction():
            await create.create_in_transaction(
                conn,
                caller=caller,
                session_id=session_id,
                request=request,
                idempotency_key=key,
                request_fingerprint=idempotency.fingerprint(
                    session_id=session_id, user_id=caller.id, request=request
                ),
                bell_link=None,
            )

    return op


def raw_claim(pool: asyncpg.Pool, account: Account, handoffs: list[uuid.UUID]) -> Operation:
    """The statements of server.handoffs.claim for a claim that wins."""

    async def op(i: int) -> None:
        claimer = account.claimer_ids[i % len(account.claimer_ids)]
        async with pool.acquire() as conn:
            await people.user_for_request(conn, user_id=claimer)
        async with pool.acquire() as conn:
            won = await claim_query(
                conn,
                handoff_id=handoffs[i],
                account_id=account.id,
                claimer_id=claimer,
                claimer_name=account.claimer_names[claimer],
                announcement_id=uuid.uuid4(),
            )
            if won is None:
                raise RuntimeError("raw claim found nothing to claim")

    return op


# ------------------------------------------------------------------ the run


async def _operations(
    operation: str,
    stage_: Stage,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    http: aiohttp.ClientSession,
    count: int,
) -> dict[str, Operation]:
    """Both sides of ``operation``, each on its own account and its own ``count`` targets."""
    sides: dict[str, Operation] = {}
    for side in SIDES:
        account = await seed_account(conn)
        if operation == "create":
            sessions = await active_sessions(conn, account, count)
            token = mint_user_token(stage_.jwt_secret, account.creator_id)
            sides[side] = (
                raw_create(pool, account, sessions)
                if side == "raw"
                else api_create(http, stage_.base_url, token, sessions)
            )
        else:
            handoffs = await open_handoffs(conn, account, count)
            tokens = [mint_user_token(stage_.jwt_secret, c) for c in account.claimer_ids]
            sides[side] = (
                raw_claim(pool, account, handoffs)
                if side == "raw"
                else api_claim(http, stage_.base_url, tokens, handoffs)
            )
    return sides


async def compare(
    operation: str, concurrency: int, ops: int, stage_: Stage, conn: asyncpg.Connection, pool: asyncpg.Pool,
    http: aiohttp.ClientSession,
) -> dict[str, Any]:  # fmt: skip
    """Raw and API in alternating slices, so a burst of other load on the machine lands on
    both sides alike rather than on whichever ran at that moment."""
    sides = await _operations(operation, stage_, conn, pool, http, WARMUP_OPS + ops)
    for side in SIDES:
        await measure(sides[side], WARMUP_OPS, concurrency)
    totals = {side: Measurement(0, 0.0, []) for side in SIDES}
    server_cpu_s = 0.0
    slice_ops = ops // SLICES
    for n in range(SLICES):
        first = WARMUP_OPS + n * slice_ops
        for side in SIDES:
            cpu_before = cpu_seconds(stage_.server_pid)
            totals[side].add(await measure(sides[side], slice_ops, concurrency, first=first))
            if side == "api":
                server_cpu_s += cpu_seconds(stage_.server_pid) - cpu_before
    raw, api = totals["raw"].summary(), totals["api"].summary()
    floor = await measure_floor(http, stage_.base_url, concurrency, ops)
    api["server_cpu_ms_per_op"] = round(server_cpu_s * 1000 / totals["api"].ops, 2)
    for side, figures in (("raw", raw), ("api", api)):
        print(f"{operation:<6} c={concurrency:<3} {side:<4} {figures}", flush=True)
    return {
        "operation": operation,
        "concurrency": concurrency,
        "ops": totals["api"].ops,
        "api": api,
        "raw": raw,
        "throughput_ratio": round(api["throughput_per_s"] / raw["throughput_per_s"], 3),
        "p99_ratio": round(api["p99_ms"] / raw["p99_ms"], 3),
        "http_floor": floor,
        # One client, one request at a time: the API's best case is the raw SQL plus one
        # bare HTTP round trip, so this is the highest throughput ratio it could reach.
        **(
            {
                "throughput_ratio_ceiling_http_only": round(
                    floor["throughput_per_s"] / (raw["throughput_per_s"] + floor["throughput_per_s"]), 3
                )
            }
            if concurrency == 1
            else {}
        ),
    }


async def run(stage_: Stage, ops_by_concurrency: dict[int, int]) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(stage_.database_url)
    pool = await asyncpg.create_pool(
        stage_.database_url, min_size=POOL_MAX_SIZE, max_size=POOL_MAX_SIZE, **POOL_OPTIONS
    )
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            return [
                await compare(
                    operation, concurrency, ops_by_concurrency[concurrency], stage_, conn, pool, http
                )
                for operation in ("create", "claim")
                for concurrency in CONCURRENCIES
            ]
    finally:
        await pool.close()
        await conn.close()


def verdicts(results: list[dict[str, Any]]) -> dict[str, Any]:
    checks = {}
    for result in results:
        name = f"{result['operation']}_c{result['concurrency']}"
        checks[f"{name}_throughput_ratio_at_least_{TARGETS[result['operation']]}"] = (
            result["throughput_ratio"] >= TARGETS[result["operation"]]
        )
        if result["concurrency"] == max(CONCURRENCIES):
            checks[f"{name}_p99_at_most_{P99_MAX_MULTIPLE_AT_50}x_raw"] = (
                result["p99_ratio"] <= P99_MAX_MULTIPLE_AT_50
            )
    return checks


def _git_head() -> str | None:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return found.stdout.strip() or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer operations (a smoke run, not for the record)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="STATS",
        help="run the server under cProfile and write its stats to STATS (figures are then "
        "not for the record; read with `python -m pstats STATS`)",
    )
    args = parser.parse_args()
    ops = QUICK_OPS if args.quick else OPS

    folder = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        with stage(folder, args.profile.resolve() if args.profile else None) as running:
            results = asyncio.run(run(running, ops))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report: dict[str, Any] = {
        "command": "uv run python bench/api.py" + (" --quick" if args.quick else ""),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_head(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other work on the machine skews every figure; this says how busy it was.
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "setup": {
            "postgres": "embedded (pgserver), durable: fsync and synchronous_commit on",
            "server": "one `baton serve` (uvicorn, one process), log level WARNING, write limit raised "
            "out of reach (the limiter still runs)",
            "client": "aiohttp, keep-alive; raw side: asyncpg pool of the server's size and options",
            "pool_size": POOL_MAX_SIZE,
            "create": "escalation with Idempotency-Key, 5 seniors rung, 4 outbox jobs",
            "claim": "uncontended: each claim wins its own open hand-off",
            "warmup_ops": WARMUP_OPS,
            "slices": f"raw and API alternate in {SLICES} slices per measurement",
            "http_floor": "GET /health on the same server and client after each comparison: "
            "HTTP, uvicorn and Litestar with nothing behind them",
        },
        "results": results,
        "targets_met": verdicts(results),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} in {report['wall_seconds']} s")
    for name, met in report["targets_met"].items():
        print(f"  {'met ' if met else 'MISS'} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
