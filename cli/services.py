"""Where this run's Postgres and Redis come from, decided once per process.

In order: the URLs in the environment (``DATABASE_URL`` / ``REDIS_URL``); else the
embedded servers of a ``baton dev`` (or any owner) already running on the same
data folder; else new embedded servers that this process owns and stops on exit.
The decision is taken under a file lock, so two commands started together agree.

Data folder layout (``BATON_DATA_DIR``, default ``./.baton``)::

    postgres/        the Postgres cluster (postmaster.pid names a live server)
    redis/           Redis' folder (redis.pid, appendonly file, redis.log)
    services.json    {"owner_pid", "postgres_port", "redis_port"} of the running owner
    services.lock    flock taken while deciding
    jwt_secret       the development token secret, when BATON_JWT_SECRET is unset
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cli import embedded_postgres, embedded_redis
from cli.embedded_postgres import EmbeddedPostgres
from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port, pid_alive, port_open

log = logging.getLogger("baton.embedded")

DEFAULT_POSTGRES_PORT = 54329
DEFAULT_REDIS_PORT = 56379
STATE_FILE_NAME = "services.json"
LOCK_FILE_NAME = "services.lock"
JWT_SECRET_FILE_NAME = "jwt_secret"


@dataclass
class Services:
    """The resolved URLs, and the embedded servers when this process owns them."""

    database_url: str
    redis_url: str
    owned_postgres: EmbeddedPostgres | None = None
    owned_redis: EmbeddedRedis | None = None
    attached_to_pid: int | None = None
    data_dir: Path | None = None
    # A forked child (Dramatiq forks its workers) inherits our atexit hook; only
    # the process that started the servers may stop them.
    owner_pid: int = field(default_factory=os.getpid)
    _stopped: bool = field(default=False, repr=False)

    @property
    def owned(self) -> bool:
        return self.owned_postgres is not None or self.owned_redis is not None

    def describe(self) -> str:
        """Where each service is (host:port, never credentials), and whose it is."""
        where = f"Postgres {_host_port(self.database_url)}, Redis {_host_port(self.redis_url)}"
        if self.attached_to_pid:
            return f"{where} (embedded, of the run with pid {self.attached_to_pid})"
        if self.owned:
            return f"{where} (embedded, started by this process)"
        return f"{where} (DATABASE_URL and REDIS_URL)"

    def stop(self) -> None:
        """Stop what we own: Redis, then Postgres. Safe to call twice."""
        if self._stopped or os.getpid() != self.owner_pid:
            return
        self._stopped = True
        if self.owned_redis:
            self.owned_redis.stop()
        if self.owned_postgres:
            self.owned_postgres.stop()
        if self.owned and self.data_dir is not None:
            _forget_owner(_state_path(self.data_dir), os.getpid())


def _host_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "(unreadable URL)"


def _state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE_NAME


def _read_state(path: Path) -> dict[str, int]:
    try:
        raw = json.loads(path.read_text())
        return {key: int(value) for key, value in raw.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _forget_owner(path: Path, pid: int) -> None:
    state = _read_state(path)
    if state.get("owner_pid") == pid:
        state.pop("owner_pid")
        path.write_text(json.dumps(state))


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with open(data_dir / LOCK_FILE_NAME, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _running_owner(data_dir: Path, state: dict[str, int], need_pg: bool, need_redis: bool) -> bool:
    if not pid_alive(state.get("owner_pid")):
        return False
    if need_pg and not (
        embedded_postgres.running_pid(data_dir / "postgres")
        and port_open("127.0.0.1", state.get("postgres_port", 0))
    ):
        return False
    return not need_redis or embedded_redis.ping(state.get("redis_port", 0))


def resolve(
    data_dir: Path,
    *,
    durable: bool = True,
    export: bool = True,
    ports: Mapping[str, int | None] | None = None,
) -> Services:
    """Find or start Postgres and Redis for this run; see the module docstring.

    ``ports`` (``postgres_port``, ``redis_port``): where new embedded servers must listen
    (refused when taken, never moved); unset, the last ones used, else the defaults, or
    any free port when those are taken (logged). With ``export`` the URLs are written to
    ``os.environ`` so that settings, Piccolo and every child process see them.
    """
    asked = {name: port for name, port in (ports or {}).items() if port}
    env_db = os.environ.get("DATABASE_URL") or None
    env_redis = os.environ.get("REDIS_URL") or None
    need_pg, need_redis = env_db is None, env_redis is None
    if not (need_pg or need_redis):
        return Services(database_url=env_db or "", redis_url=env_redis or "")

    data_dir.mkdir(parents=True, exist_ok=True)
    state_path = _state_path(data_dir)
    with _locked(data_dir):
        state = _read_state(state_path)
        if _running_owner(data_dir, state, need_pg, need_redis):
            for name, port in asked.items():
                if state.get(name) != port:
                    log.warning(
                        "%s: the running services of pid %s listen on %s, not %s; using them",
                        name.replace("_", " "),
                        state["owner_pid"],
                        state.get(name),
                        port,
                    )
            services = Services(
                database_url=env_db or embedded_postgres.url(state["postgres_port"]),
                redis_url=env_redis or embedded_redis.url(state["redis_port"]),
                attached_to_pid=state["owner_pid"],
            )
        else:
            if state.get("owner_pid"):
                log.warning(
                    "the run with pid %s that owned %s is gone; cleaning up after it",
                    state["owner_pid"],
                    data_dir,
                )
            services = _start(data_dir, state, need_pg, need_redis, durable, env_db, env_redis, asked)
            atexit.register(services.stop)
    if export:
        os.environ["DATABASE_URL"] = services.database_url
        os.environ["REDIS_URL"] = services.redis_url
    return services


def _start(
    data_dir: Path,
    state: dict[str, int],
    need_pg: bool,
    need_redis: bool,
    durable: bool,
    env_db: str | None,
    env_redis: str | None,
    asked: Mapping[str, int],
) -> Services:
    postgres = redis = None
    # Orphans first: a Postgres still running on this data folder would refuse a
    # second postmaster, and an orphan Redis would hold the port we want back.
    if need_pg:
        embedded_postgres.stop_orphan(data_dir / "postgres")
    if need_redis:
        embedded_redis.stop_orphan(data_dir / "redis")
    try:
        if need_pg:
            port = _port_for("postgres_port", state, asked, DEFAULT_POSTGRES_PORT, "--pg-port")
            # die_with_owner: nothing a command started outlives it, even SIGKILLed.
            postgres = EmbeddedPostgres(data_dir / "postgres", port, durable=durable, die_with_owner=True)
            postgres.start()
            state["postgres_port"] = port
        if need_redis:
            port = _port_for("redis_port", state, asked, DEFAULT_REDIS_PORT, "--redis-port")
            redis = EmbeddedRedis(data_dir / "redis", port, durable=durable, die_with_owner=True)
            redis.start()
            state["redis_port"] = port
    except BaseException:
        if postgres:
            postgres.stop()
        raise
    state["owner_pid"] = os.getpid()
    _state_path(data_dir).write_text(json.dumps(state))
    return Services(
        database_url=env_db or (postgres.url if postgres else ""),
        redis_url=env_redis or (redis.url if redis else ""),
        owned_postgres=postgres,
        owned_redis=redis,
        data_dir=data_dir,
    )


def _port_for(name: str, state: dict[str, int], asked: Mapping[str, int], default: int, option: str) -> int:
    """The asked port (or stop, when it is taken), else the last one used or the default,
    else a free one, said in the log: a port that moves silently breaks saved URLs."""
    what = name.removesuffix("_port").capitalize()
    if name in asked:
        port = asked[name]
        if free_port(port) != port:
            raise SystemExit(
                f"baton: {what} cannot listen on port {port}: it is taken. Choose another with {option}."
            )
        return port
    preferred = state.get(name) or default
    port = free_port(preferred)
    if port != preferred:
        log.warning(
            "%s: port %s is taken; listening on %s instead (choose one with %s)",
            what,
            preferred,
            port,
            option,
        )
    return port


def ensure_jwt_secret(data_dir: Path) -> str:
    """``BATON_JWT_SECRET``, or the development secret kept in the data folder.

    Exported to the environment so child processes sign and check with the same one.
    """
    secret = os.environ.get("BATON_JWT_SECRET")
    if secret:
        return secret
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / JWT_SECRET_FILE_NAME
    with _locked(data_dir):
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        secret = path.read_text().strip()
    os.environ["BATON_JWT_SECRET"] = secret
    return secret
