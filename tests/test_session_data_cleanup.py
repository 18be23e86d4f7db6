"""A test run removes what its session created (the embedded servers' data, 45-65 MB a run),
whether its tests passed, failed or were interrupted; it keeps it only when asked.

Each case runs a tiny pytest session of its own in a subprocess, with this suite's
conftest, its own embedded Postgres and Redis, and a fresh temp folder to look into.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import KEEP_DATA_ENV, REPO_ROOT

SESSION_TIMEOUT_S = 120.0
TINY_SUITE = """
import os
from pathlib import Path


async def test_the_servers_answer(db):
    assert await db.fetchval("SELECT 1") == 1
    {last_line}
"""
STARTED_MARKER = "session-started"


def tiny_session(tmp_path: Path, last_line: str = "", **env: str) -> tuple[subprocess.Popen[str], Path]:
    """A pytest session of one test (ending in ``last_line``) with TMPDIR a fresh folder."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_tiny.py").write_text(TINY_SUITE.format(last_line=last_line))
    temp = tmp_path / "temp"
    temp.mkdir()
    # Its own servers: nothing of this session's (DATABASE_URL, REDIS_URL...) is inherited.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "BATON_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(REPO_ROOT / "pyproject.toml"),
            "--rootdir",
            str(suite),
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            str(suite),
        ],
        cwd=REPO_ROOT,
        env={**inherited, "TMPDIR": str(temp), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, temp


def finished(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=SESSION_TIMEOUT_S)
    return output


@pytest.mark.parametrize(("last_line", "exit_code"), [("", 0), ("assert False, 'on purpose'", 1)])
def test_a_finished_run_leaves_nothing_in_the_temp_folder(
    tmp_path: Path, last_line: str, exit_code: int
) -> None:
    process, temp = tiny_session(tmp_path, last_line)
    output = finished(process)
    assert process.returncode == exit_code, output
    assert sorted(p.name for p in temp.iterdir()) == [], output


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_nothing_in_the_temp_folder(tmp_path: Path, stop_signal: int) -> None:
    marker = tmp_path / STARTED_MARKER
    waits = f"Path({str(marker)!r}).touch(); await asyncio.sleep({SESSION_TIMEOUT_S})"
    process, temp = tiny_session(tmp_path, waits)
    deadline = time.monotonic() + SESSION_TIMEOUT_S
    while not marker.exists():  # the test runs: the servers are up, their data written
        assert process.poll() is None, finished(process)
        assert time.monotonic() < deadline, "the tiny session never started its test"
        time.sleep(0.05)
    assert [p.name for p in temp.iterdir() if p.name.startswith("baton-test-")], "no session folder to remove"
    process.send_signal(stop_signal)
    output = finished(process)
    assert process.returncode != 0, output
    assert sorted(p.name for p in temp.iterdir()) == [], output


def test_the_data_is_kept_when_asked_and_the_run_says_where(tmp_path: Path) -> None:
    process, temp = tiny_session(tmp_path, **{KEEP_DATA_ENV: "1"})
    output = finished(process)
    assert process.returncode == 0, output
    [kept] = [p for p in temp.iterdir() if p.name.startswith("baton-test-")]
    assert f"test data kept ({KEEP_DATA_ENV}=1): {kept}" in output
    assert (kept / "postgres" / "PG_VERSION").exists()
    shutil.rmtree(kept)
