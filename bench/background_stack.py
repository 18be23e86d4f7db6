"""What the background-work benchmarks share: embedded Postgres + Redis, migrations,
``baton serve`` / ``baton worker`` processes, a seeded account, and a percentile helper."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from cli.embedded_postgres import EmbeddedPostgres
from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port, wait_until
from server.tokens import mint_user_token

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SECRET = "bench-secret-" + "y" * 32
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            found.setdefault(parent, []).append(int(entry.name))
    return found


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every live process below it."""
    children, total, todo = _children(), 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime: the last two count reaped children too.
            total += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS_PER_S
        except (OSError, IndexError, ValueError):
            pass
        todo += children.get(current, [])
    return total


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 3),
    }


@dataclass
class Stack:
    """Postgres, Redis and Baton processes in a throwaway folder; ``stop()`` ends them all."""

    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="baton-bench-")))
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def start(self) -> Stack:
        self.postgres = EmbeddedPostgres(self.work / "postgres", free_port(), durable=False)
        self.redis = EmbeddedRedis(self.work / "redis", free_port(), durable=False)
        self.postgres.start()
        self.redis.start()
        self.env = {
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "BATON_JWT_SECRET": SECRET,
            "BATON_DATA_DIR": str(self.work),
            "BATON_LOG_LEVEL": "WARNING",
            "ANTHROPIC_API_KEY": "",
            "SMTP_URL": "",
        }
        subprocess.run(
            [sys.executable, "-m", "cli", "migrate"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
        )
        return self

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}-{len(self.processes)}.log", "wb")  # noqa: SIM115 - as long as the process
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", *argv],
            cwd=ROOT,
            env={**os.environ, **self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def serve(self, env: dict[str, str] | None = None) -> str:
        port = free_port()
        self._spawn("serve", ["serve", "--port", str(port)], env or {})
        url = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: _ready(url), START_TIMEOUT_S):
            raise RuntimeError(f"baton serve did not start; see {self.work}")
        return url

    def worker(self, env: dict[str, str] | None = None, processes: int = 2, threads: int = 8) -> None:
        # INFO: wait_for_workers reads each process's "outbox relay started" line.
        env = {"BATON_LOG_LEVEL": "INFO", **(env or {})}
        self._spawn("worker", ["worker", "--processes", str(processes), "--threads", str(threads)], env)

    def wait_for_workers(self, processes: int) -> None:
        """Until every worker process has booted: its pool is up and its relay running."""

        def booted() -> bool:
            text = "".join(p.read_text(errors="replace") for p in self.work.glob("worker-*.log"))
            return text.count("outbox relay started") >= processes

        if not wait_until(booted, START_TIMEOUT_S):
            raise RuntimeError(f"the workers did not boot; see {self.work}")

    def cpu_by_part(self) -> dict[str, float]:
        """CPU seconds so far of each part: Postgres, Redis, each Baton process, this one."""
        assert self.postgres is not None and self.postgres.process is not None
        assert self.redis is not None and self.redis.process is not None
        own = os.times()
        parts = {
            "postgres": cpu_s(self.postgres.process.pid),
            "redis": cpu_s(self.redis.process.pid),
            "bench_and_fakes": own.user + own.system,  # this process: the SMTP server and the client
        }
        for n, process in enumerate(self.processes):
            name = Path(str(process.args[3] if len(process.args) > 3 else "baton")).name
            parts[f"{name}-{n}"] = cpu_s(process.pid)
        return parts

    def stop(self) -> None:
        # Dramatiq's worker processes are children of `baton worker`: note them first, so
        # none outlives a parent that had to be killed.
        children = _children()
        descendants: list[int] = []
        todo = [p.pid for p in self.processes]
        while todo:
            kids = children.get(todo.pop(), [])
            descendants += kids
            todo += kids
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Seeded:
    account_id: uuid.UUID
    tech_id: uuid.UUID
    tech_token: str
    senior_emails: list[str]


async def seed_account(database_url: str, seniors: int) -> Seeded:
    """An account with one technician and ``seniors`` engineers, written in bulk."""
    conn = await asyncpg.connect(database_url)
    try:
        account_id, tech_id = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Bench MSP')", account_id)
        await conn.execute(
            "INSERT INTO users (id, account_id, email, name, account_role) "
            "VALUES ($1, $2, 'tech@bench.example', 'Tess Tech', 'technician')",
            tech_id,
            account_id,
        )
        emails = [f"senior{i:05d}@bench.example" for i in range(seniors)]
        await conn.execute(
            """
            INSERT INTO users (id, account_id, email, name, account_role)
            SELECT gen_random_uuid(), $1, email, 'Senior ' || email, 'engineer'
            FROM unnest($2::text[]) AS email
            """,
            account_id,
            emails,
        )
    finally:
        await conn.close()
    return Seeded(account_id, tech_id, mint_user_token(SECRET, tech_id), emails)


async def seed_sessions(
    database_url: str, seeded: Seeded, count: int, extra: dict[str, Any] | None = None
) -> list[uuid.UUID]:
    """``count`` active sessions of the technician, each with a few steps."""
    extra = extra or {}
    conn = await asyncpg.connect(database_url)
    try:
        ids = [uuid.uuid4() for _ in range(count)]
        await conn.execute(
            """
            INSERT INTO ai_sessions (id, account_id, user_id, status, problem_summary, problem_domain,
                                     step_count, psa_ticket_id, psa_connection_id, conversation_messages)
            SELECT id, $1, $2, 'active', 'Printer offline on floor 3', 'printing', 2, $4, $5, '[]'::jsonb
            FROM unnest($3::uuid[]) AS id
            """,
            seeded.account_id,
            seeded.tech_id,
            ids,
            extra.get("psa_ticket_id"),
            extra.get("psa_connection_id"),
        )
        await conn.execute(
            """
            INSERT INTO session_steps (id, session_id, step_order, content)
            SELECT gen_random_uuid(), id, n, jsonb_build_object('text', 'Step ' || n)
            FROM unnest($1::uuid[]) AS id, generate_series(0, 1) AS n
            """,
            ids,
        )
    finally:
        await conn.close()
    return ids
