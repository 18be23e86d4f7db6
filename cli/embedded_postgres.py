"""A real Postgres 16 from the ``pgserver`` wheel, run as our own child process.

We use only pgserver's binaries, not its ``get_server()``: that one counts handles
in ``<pgdata>/.handle_pids.json`` and never stops a server whose last holder was
SIGKILLed. Here one owner process starts ``postgres`` listening on 127.0.0.1 (no
unix socket, so the URL is an ordinary TCP one) and stops it; a server left behind
by a killed owner is found through ``postmaster.pid`` and stopped at the next start.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

from cli.processes import cmdline, die_with_parent, pid_alive, stop_pid, wait_until

log = logging.getLogger("baton.embedded")

DATABASE_NAME = "baton"
SUPERUSER = "postgres"
# Postgres refuses to run as root; pgserver's convention is a system user of this name.
SYSTEM_USER_WHEN_ROOT = "pgserver"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# pgserver is in the `embedded` dependency group: installed by `uv sync`, left out of the
# production image, which sets DATABASE_URL.
MISSING_PACKAGE_MESSAGE = (
    "baton: embedded Postgres needs the `embedded` dependency group: run `uv sync`, or set DATABASE_URL"
)


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(MISSING_PACKAGE_MESSAGE)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--shell", "/usr/sbin/nologin", SYSTEM_USER_WHEN_ROOT],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER_WHEN_ROOT


def _let_user_traverse(path: Path, user: str) -> None:
    """Let ``user`` pass through every parent folder of ``path`` (o+x: it may enter them,
    not list them). A checkout in a private folder (``/root``, ``mktemp -d``: 0700) would
    otherwise hide the cluster, or pgserver's binaries inside the checkout's venv, from the
    Postgres user, and initdb fails with "permission denied"."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("letting the %s user pass through %s (o+x) to reach Postgres", user, parent)
            parent.chmod(mode | stat.S_IXOTH)


def _let_user_reach(path: Path, user: str) -> None:
    """chown the folder to ``user`` and let it traverse every parent folder."""
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    _let_user_traverse(path, user)


def url(port: int, database: str = DATABASE_NAME) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def running_pid(pgdata: Path) -> int | None:
    """The pid of a postmaster serving ``pgdata``, if one is alive."""
    try:
        first_line = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first_line)
    except (OSError, IndexError, ValueError):
        return None
    if pid_alive(pid) and any("postgres" in part for part in cmdline(pid)[:1]):
        return pid
    return None


def stop_orphan(pgdata: Path) -> bool:
    """Stop a postmaster left running on ``pgdata`` by an owner that died."""
    pid = running_pid(pgdata)
    if pid is None:
        return False
    log.warning("stopping a Postgres (pid %s) left running by an earlier run", pid)
    # SIGINT is Postgres' "fast" shutdown: it ends sessions instead of waiting for them.
    stop_pid(pid, signal.SIGINT, STOP_TIMEOUT_S)
    return True


class EmbeddedPostgres:
    """One Postgres server over ``pgdata``, owned by the process that started it."""

    def __init__(
        self,
        pgdata: Path,
        port: int,
        *,
        durable: bool = True,
        bin_dir: Path | None = None,
        die_with_owner: bool = False,
    ) -> None:
        self.pgdata = pgdata
        self.port = port
        self.durable = durable
        # Stopped by the kernel when the thread that started it ends (see die_with_parent).
        self.die_with_owner = die_with_owner
        # pgserver's binaries: the installed wheel's unless told (a test moves them).
        self.bin_dir = bin_dir or _bin_dir()
        self.process: subprocess.Popen[bytes] | None = None
        self._user = _system_user()

    @property
    def url(self) -> str:
        return url(self.port)

    def _identity(self) -> dict[str, Any]:
        """subprocess arguments that drop root for the Postgres user, groups included:
        with root's group kept, a 0701 parent folder would deny it by group bits."""
        if not self._user:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run_as_user(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(args, check=True, capture_output=True, **self._identity())

    def init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        log.info("creating a Postgres cluster in %s", self.pgdata)
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-made cluster from an interrupted initdb
        self.pgdata.mkdir(parents=True)
        if self._user:
            _let_user_reach(self.pgdata, self._user)
        self._run_as_user(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
                "-U",
                SUPERUSER,
            ]
        )

    def start(self) -> None:
        if self._user:
            # Every start, not only the first: the binaries move with each new venv,
            # and a parent folder may have lost its o+x since (pytest makes its
            # /tmp/pytest-of-<user> 0700 again at each session's start).
            _let_user_traverse(self.bin_dir, self._user)
            _let_user_traverse(self.pgdata, self._user)
        self.init()
        stop_orphan(self.pgdata)
        log_path = self.pgdata / "server.log"
        args = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            # Test clusters are thrown away: skip the fsyncs.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it last
                # With die_with_owner, if we are SIGKILLed the kernel sends it SIGINT (a
                # fast shutdown) rather than leave it running in its own session. Set
                # after the switch to the Postgres user (a change of user clears the
                # setting): subprocess runs preexec_fn after setuid.
                preexec_fn=die_with_parent(signal.SIGINT) if self.die_with_owner else None,
                **self._identity(),
            )
        pg_isready = str(self.bin_dir / "pg_isready")

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Postgres exited at start (code {self.process.returncode}); see {log_path}"
                )
            probe = ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-q"]
            return subprocess.run([pg_isready, *probe], check=False).returncode == 0

        if not wait_until(ready, START_TIMEOUT_S, 0.1):
            self.stop()
            raise RuntimeError(f"Postgres did not start within {START_TIMEOUT_S:.0f} s; see {log_path}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        psql = [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]
        found = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{DATABASE_NAME}'"],
            check=True,
            capture_output=True,
        ).stdout.strip()
        if found != b"1":
            subprocess.run([*psql, "-qc", f"CREATE DATABASE {DATABASE_NAME}"], check=True)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
