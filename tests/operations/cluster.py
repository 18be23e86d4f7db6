"""A local cluster for the chaos test: ``baton dev --web 2 --workers 2`` (the tested twin of
compose.yaml), with handles to hurt it: SIGKILL a worker pool, restart a web replica."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.processes import free_port, pid_alive
from tests.actors.test_worker_crash import descendants
from tests.conftest import REPO_ROOT, http_status, wait_for

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def two_free_ports() -> int:
    """A port P with P + 1 free too (``baton dev`` serves on consecutive ports)."""
    for _ in range(50):
        port = free_port()
        if free_port(port + 1) == port + 1:
            return port
    raise RuntimeError("no two consecutive free ports")


class Cluster:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = two_free_ports()
        self.ports = [self.port, self.port + 1]
        self.log_path = log_path
        self._env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            argv = [sys.executable, "-m", "cli", "dev", "--web", "2", "--workers", "2", "--no-seed"]
            self.process = subprocess.Popen(
                [*argv, "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=self._env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"baton dev exited:\n{self.log()[-5000:]}")
            answering = all(http_status(f"{url}/ready") == 200 for url in self.urls)
            return answering and len(self.worker_pids()) == 2

        wait_for(ready, READY_TIMEOUT_S, "the cluster to be ready", poll_s=0.2)

    def _children(self) -> list[int]:
        assert self.process is not None
        return [pid for pid in descendants(self.process.pid) if _parent(pid) == self.process.pid]

    def worker_pids(self) -> list[int]:
        return sorted(pid for pid in self._children() if "worker" in _cmdline(pid))

    def web_pid(self, port: int) -> int | None:
        for pid in self._children():
            line = _cmdline(pid)
            if "serve" in line and str(port) in line:
                return pid
        return None

    def kill_newest_worker(self) -> int:
        """SIGKILL the newest worker pool whole (its parent and Dramatiq's processes): a
        crash, an OOM kill. ``baton dev`` restarts it, as a container runtime would."""
        pid = self.worker_pids()[-1]
        for victim in [*descendants(pid), pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        return pid

    def restart_web(self, index: int) -> None:
        """SIGTERM one web replica (a rolling deploy) and wait for its successor to answer."""
        port = self.ports[index]
        pid = self.web_pid(port)
        assert pid is not None, f"no web replica on port {port}"
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), STOP_TIMEOUT_S, f"web replica {pid} to stop")

        def successor_ready() -> bool:
            new_pid = self.web_pid(port)
            return new_pid not in (None, pid) and http_status(f"http://127.0.0.1:{port}/ready") == 200

        wait_for(successor_ready, READY_TIMEOUT_S, f"the web replica on {port} to come back", poll_s=0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for pid in [*descendants(self.process.pid), self.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()
        # Let a straggler's ports go before the next test.
        time.sleep(0.1)
