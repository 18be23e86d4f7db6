"""Real Postgres and Redis for the whole test session, and real Baton processes.

With ``DATABASE_URL`` / ``REDIS_URL`` unset, one embedded Postgres and one embedded
Redis are started under a temporary folder for the session. With ``DATABASE_URL``
set, a throwaway database is created on that server (and dropped at the end);
with ``REDIS_URL`` set, that Redis is used and only ``baton:*`` keys are cleared.
Migrations are applied through Piccolo once; every test starts with empty tables.

The session's folder (``baton-test-*`` in the temp folder: the embedded servers' data, the
mail written to files) is removed when the run ends, passed, failed, interrupted (Ctrl-C,
or SIGTERM, which is taken as one) alike. ``BATON_TEST_KEEP_DATA=1`` keeps it, and so
does a session whose servers failed to start (their logs are in it); the summary at the
end says where it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import asyncpg
import pytest
import redis

from cli.embedded_postgres import EmbeddedPostgres
from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
PROCESS_READY_TIMEOUT_S = 30.0
TEST_JWT_SECRET = "test-secret-" + secrets.token_hex(16)
TEST_OUTBOUND_ALLOW_CIDRS = "127.0.0.0/8,::1/128"
KEEP_DATA_ENV = "BATON_TEST_KEEP_DATA"
KEPT_DATA_DIRS: list[Path] = []
"""Session folders left in place this run, for the closing summary."""


@dataclass
class SessionServices:
    database_url: str
    redis_url: str
    data_dir: Path
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def _throwaway_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"baton_test_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}", lambda: asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def services() -> Iterator[SessionServices]:
    data_dir = Path(tempfile.mkdtemp(prefix="baton-test-"))
    found = SessionServices(database_url="", redis_url="", data_dir=data_dir)
    failed_to_start = False
    try:
        with _sigterm_as_interrupt():
            if os.environ.get("DATABASE_URL"):
                found.database_url, drop = _throwaway_database(os.environ["DATABASE_URL"])
                found.cleanups.append(drop)
            else:
                found.postgres = EmbeddedPostgres(
                    data_dir / "postgres", free_port(), durable=False, die_with_owner=True
                )
                found.cleanups.append(found.postgres.stop)
                found.postgres.start()
                found.database_url = found.postgres.url
            if os.environ.get("REDIS_URL"):
                found.redis_url = os.environ["REDIS_URL"]
            else:
                found.redis = EmbeddedRedis(
                    data_dir / "redis", free_port(), durable=False, die_with_owner=True
                )
                found.cleanups.append(found.redis.stop)
                found.redis.start()
                found.redis_url = found.redis.url

            # Everything below this point — Piccolo, settings, child processes — reads these.
            os.environ.update(
                {
                    "DATABASE_URL": found.database_url,
                    "REDIS_URL": found.redis_url,
                    "BATON_DATA_DIR": str(data_dir),
                    "BATON_JWT_SECRET": TEST_JWT_SECRET,
                    # The local fakes of the outside world (PSAs, Slack, Teams) listen on
                    # loopback; tests of the outbound rule itself override this.
                    "BATON_OUTBOUND_ALLOW_CIDRS": TEST_OUTBOUND_ALLOW_CIDRS,
                }
            )
            from settings import get_settings

            get_settings.cache_clear()
            _migrate()
            yield found
    except Exception:  # only the setup can raise here: a test's failure is not thrown in
        failed_to_start = True
        raise
    finally:
        for cleanup in reversed(found.cleanups):
            cleanup()
        if not failed_to_start and os.environ.get(KEEP_DATA_ENV) != "1":
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            KEPT_DATA_DIRS.append(data_dir)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI step's timeout, ``timeout``, a harness) stops the run as Ctrl-C does,
    so the session's teardown still stops the servers and removes their data."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for kept in KEPT_DATA_DIRS:
        why = f"{KEEP_DATA_ENV}=1" if os.environ.get(KEEP_DATA_ENV) == "1" else "the servers did not start"
        terminalreporter.write_line(f"test data kept ({why}): {kept}")


def _migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = asyncio.run(run_forwards("all"))
    assert result.success, result.message


@pytest.fixture(scope="session")
def database_url(services: SessionServices) -> str:
    return services.database_url


@pytest.fixture(scope="session")
def redis_url(services: SessionServices) -> str:
    return services.redis_url


_TABLES_SQL = """
SELECT string_agg(format('%I.%I', schemaname, tablename), ', ')
FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'migration'
"""


@pytest.fixture(autouse=True)
def empty_state(services: SessionServices) -> None:
    """Every test starts with empty tables and no Baton keys in Redis."""

    async def truncate() -> None:
        conn = await asyncpg.connect(services.database_url)
        try:
            tables = await conn.fetchval(_TABLES_SQL)
            if tables:
                await conn.execute(f"TRUNCATE {tables} CASCADE")
        finally:
            await conn.close()

    asyncio.run(truncate())
    client = redis.Redis.from_url(services.redis_url)
    try:
        keys = list(client.scan_iter(match="baton:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def db(services: SessionServices) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection, for setting up rows and checking what was written."""
    conn = await asyncpg.connect(services.database_url)
    try:
        yield conn
    finally:
        await conn.close()


# ---------------------------------------------------------------- real processes


@dataclass
class BatonProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def base_url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _signal_group(self, sig: signal.Signals) -> None:
        # The process leads its own group (start_new_session): a `baton worker`'s
        # Dramatiq children are in it too, and must not outlive the test, or they take
        # the next test's messages.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the process alone, as compose and ``baton dev`` stop it; then its
        group is SIGKILLed, stragglers included. A SIGTERM to the whole group reached each
        Dramatiq worker process twice (its parent forwards one), which Dramatiq takes as
        "kill now": it exited without stopping its threads and hung until the SIGKILL,
        so every worker test's teardown waited out ``timeout_s``."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def kill(self) -> None:
        """SIGKILL the process and everything it started."""
        self._signal_group(signal.SIGKILL)
        self.process.wait()


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


class BatonProcesses:
    """Starts ``baton serve`` / ``baton worker`` processes and stops them after the test."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[BatonProcess] = []

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None) -> BatonProcess:
        log_path = self.log_dir / f"{name}-{len(self.started)}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", *argv],
                cwd=REPO_ROOT,
                env={**os.environ, **(env or {})},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = BatonProcess(name, process, log_path)
        self.started.append(started)
        return started

    def serve(self, env: dict[str, str] | None = None, port: int | None = None) -> BatonProcess:
        port = port or free_port()
        server = self._spawn("serve", ["serve", "--port", str(port)], env)
        server.port = port

        def up() -> bool:
            if server.process.poll() is not None:
                raise AssertionError(f"baton serve exited early:\n{server.log()}")
            return http_status(f"{server.base_url}/health") == 200

        wait_for(up, PROCESS_READY_TIMEOUT_S, f"baton serve on port {port}")
        return server

    def worker(self, env: dict[str, str] | None = None, processes: int = 1, threads: int = 4) -> BatonProcess:
        return self._spawn(
            "worker", ["worker", "--processes", str(processes), "--threads", str(threads)], env
        )

    def stop_all(self) -> None:
        for started in reversed(self.started):
            started.stop()


CLI_TIMEOUT_S = 120


def run_baton(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``baton ARGS`` run to its end, as a script would (this checkout, the session's env)."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


@pytest.fixture
def postgres_home() -> Iterator[Path]:
    """A fresh folder for an embedded Postgres a test starts itself, outside pytest's
    basetemp: as root, Postgres runs as the ``pgserver`` user and needs o+x on every
    parent, and each pytest session starting on the machine makes /tmp/pytest-of-<user>
    0700 again, pulling the floor from under a cluster another session runs there."""
    folder = Path(tempfile.mkdtemp(prefix="baton-test-pg-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def baton(services: SessionServices, tmp_path: Path) -> Iterator[BatonProcesses]:
    processes = BatonProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()
