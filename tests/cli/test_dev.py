"""`baton dev` on embedded services: it starts, shares its servers with other
commands, survives being SIGKILLed, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from cli import embedded_postgres
from cli.embedded_postgres import EmbeddedPostgres
from cli.processes import free_port, pid_alive
from tests.conftest import REPO_ROOT, http_status, wait_for
from tests.fakes.anthropic_api import GOOD_ASSESSMENT, FakeAnthropic, tool

DEV_READY_TIMEOUT_S = 60.0


def _embedded_env(data_dir: Path) -> dict[str, str]:
    """The environment of a fresh clone: no URLs, no secret, only a data folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BATON_JWT_SECRET")}
    env["BATON_DATA_DIR"] = str(data_dir)
    return env


def _start_dev(
    data_dir: Path, port: int, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "dev", "--port", str(port), "--web", "1", "--workers", "1"],
            cwd=REPO_ROOT,
            env={**_embedded_env(data_dir), **(env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(dev: subprocess.Popen[bytes], port: int, log_path: Path) -> float:
    started = time.monotonic()

    def ready() -> bool:
        if dev.poll() is not None:
            raise AssertionError(f"baton dev exited:\n{log_path.read_text()}")
        return http_status(f"http://127.0.0.1:{port}/ready") == 200

    wait_for(ready, DEV_READY_TIMEOUT_S, f"baton dev to be ready:\n{log_path.read_text()}", poll_s=0.2)
    return time.monotonic() - started


def _escalate_as_the_banner_shows(log_path: Path) -> dict[str, Any]:
    """Paste the banner's curl, as a new user would: the hand-off it creates."""
    wait_for(lambda: "Press Ctrl-C to stop." in log_path.read_text(), 30, "the banner")
    banner = log_path.read_text()
    assert "host-app service token of the demo account (development only): eyJ" in banner
    [curl] = [line.strip() for line in banner.splitlines() if line.strip().startswith("curl ")]
    pasted = subprocess.run(
        [*shlex.split(curl), "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30
    )
    body, _, status = pasted.stdout.rpartition("\n")
    assert status == "201", pasted.stdout + pasted.stderr
    created: dict[str, Any] = json.loads(body)
    return created


def _redis_pid(data_dir: Path) -> int:
    return int((data_dir / "redis" / "redis.pid").read_text())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _our_processes(data_dir: Path) -> list[int]:
    """Every live process whose command line or environment names this data folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(data_dir).encode() in text and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def test_a_sigkilled_dev_restarts_cleanly_and_commands_share_its_services(postgres_home: Path) -> None:
    data_dir = postgres_home / "data"
    log_path = postgres_home / "dev.log"
    port = free_port()

    first = _start_dev(data_dir, port, log_path)
    try:
        _wait_ready(first, port, log_path)
        # The demo's session on a PSA ticket gets its note from dev's own demo PSA.
        created = _escalate_as_the_banner_shows(log_path)
        assert created["snapshot"]["problem_summary"].startswith("Outlook")
        pushed = f"hand-off {created['id']}: PSA push pushed"
        wait_for(lambda: pushed in log_path.read_text(), 30, "the worker to record the PSA note")
        notes = (data_dir / "demo-psa" / "ticket-48213.txt").read_text()
        assert f"Escalated: {created['snapshot']['problem_summary']}" in notes
        # The caught e-mails' pick-up links point at the URL the banner printed, and open there.
        public_url = f"http://127.0.0.1:{port}"
        assert f"links       {public_url}" in log_path.read_text()
        link = re.compile(rf"{re.escape(public_url)}/pickup/[A-Za-z0-9_-]{{71}}")

        def caught_link() -> str | None:
            for mail in (data_dir / "mail").glob("*.eml"):
                if found := link.search(mail.read_text(errors="replace")):
                    return found.group()
            return None

        wait_for(lambda: caught_link() is not None, 30, "a caught e-mail with a pick-up link")
        with urllib.request.urlopen(str(caught_link()), timeout=10) as page:
            assert page.status == 200 and b"Pick up" in page.read()
        old_postgres = embedded_postgres.running_pid(data_dir / "postgres")
        old_redis = _redis_pid(data_dir)
        assert old_postgres and pid_alive(old_redis)
        children = [
            pid for pid in _our_processes(data_dir) if pid not in (first.pid, old_postgres, old_redis)
        ]

        first.kill()
        first.wait()
        # Nothing it started outlives it: web, worker pool, Postgres and Redis each sit in
        # a session of their own, so the kernel (PR_SET_PDEATHSIG) stops them.
        wait_for(lambda: not _our_processes(data_dir), 15, "everything dev started to die with it")
        assert not pid_alive(old_postgres) and not pid_alive(old_redis) and children
    finally:
        if first.poll() is None:
            first.kill()

    # A server left running all the same (an owner killed before it could arrange that,
    # an older Baton) is found through the state file and stopped by the next run.
    state = json.loads((data_dir / "services.json").read_text())
    assert state["owner_pid"] == first.pid
    leftover = EmbeddedPostgres(data_dir / "postgres", state["postgres_port"], durable=False)
    leftover.start()
    old_postgres = embedded_postgres.running_pid(data_dir / "postgres")
    assert old_postgres is not None

    second = _start_dev(data_dir, port, log_path)
    try:
        _wait_ready(second, port, log_path)
        assert not pid_alive(old_postgres), "the orphan Postgres was not stopped"
        state = json.loads((data_dir / "services.json").read_text())
        assert state["owner_pid"] == second.pid
        assert "left running by an earlier run" in log_path.read_text()

        # A command run beside it uses its servers rather than starting its own.
        postgres_pid = embedded_postgres.running_pid(data_dir / "postgres")
        done = subprocess.run(
            [sys.executable, "-m", "cli", "account", "create", "Beside dev", "--json"],
            cwd=REPO_ROOT,
            env=_embedded_env(data_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert embedded_postgres.running_pid(data_dir / "postgres") == postgres_pid
        assert json.loads((data_dir / "services.json").read_text())["owner_pid"] == second.pid
        account_id = json.loads(done.stdout)["account_id"]
        psql = Path(embedded_postgres._bin_dir()) / "psql"
        found = subprocess.run(
            [
                str(psql),
                embedded_postgres.url(state["postgres_port"]),
                "-tAc",
                f"SELECT name FROM accounts WHERE id = '{account_id}'",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert found == "Beside dev"
        assert http_status(f"http://127.0.0.1:{port}/ready") == 200

        # A web child that dies is logged and restarted by the supervisor.
        [web] = [pid for pid in _our_processes(data_dir) if f"serve\0--port\0{port}" in _cmdline(pid)]
        os.kill(web, signal.SIGKILL)
        wait_for(lambda: "restarted web-1" in log_path.read_text(), 30, "the web child to be restarted")
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/ready") == 200, 30, "the new web child")
        assert f"web-1 (pid {web}) exited with signal 9" in log_path.read_text()
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(60)
        except subprocess.TimeoutExpired:
            second.kill()
            raise
    assert second.returncode == 0
    wait_for(lambda: not _our_processes(data_dir), 15, "every process of the run to stop after Ctrl-C")


def test_ctrl_c_stops_dev_promptly_while_an_ai_call_is_in_flight(postgres_home: Path) -> None:
    """In development a stop does not wait out the work in hand (production's pools drain
    for 30 s): an AI call that hangs is cut short and redelivered at the next start. The
    call is caused by pasting the escalation the banner offers."""
    data_dir, log_path, port = postgres_home / "data", postgres_home / "dev.log", free_port()
    with FakeAnthropic() as ai:
        ai.always(tool(GOOD_ASSESSMENT, delay_s=120))
        dev = _start_dev(data_dir, port, log_path, env=ai.env())
        try:
            _wait_ready(dev, port, log_path)
            _escalate_as_the_banner_shows(log_path)
            wait_for(lambda: bool(ai.calls), 30, "the worker to be inside an AI call")

            asked = time.monotonic()
            dev.send_signal(signal.SIGINT)
            dev.wait(30)
            took_s = time.monotonic() - asked
        finally:
            if dev.poll() is None:
                dev.kill()
    assert dev.returncode == 0
    assert took_s < 10, f"Ctrl-C took {took_s:.1f} s"
    assert "did not stop within" not in log_path.read_text()
    wait_for(lambda: not _our_processes(data_dir), 15, "every process of the run to stop")
