"""``baton``: one entry point for every process and chore.

    baton dev [--port 8000] [--web N] [--workers M]   the whole product, locally
    baton serve [--port P]                            one web process
    baton worker [--processes N] [--threads T]        one Dramatiq worker pool
    baton migrate                                     apply the Piccolo migrations
    baton account create NAME [--json]                a new account + its service token
    baton account rotate-token ACCOUNT_ID [--grace S] a new service token; the old one ends
    baton token USER_ID [--ttl S]                     a user token (default 12 h)
    baton seed --demo [--json]                        the demo account

Every command takes ``--data-dir`` (``BATON_DATA_DIR``, default ``./.baton``). With
``DATABASE_URL`` / ``REDIS_URL`` unset, Postgres and Redis are embedded; a command
run while ``baton dev`` is up on the same data folder uses its servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("baton.cli")

DEV_THREADS_PER_WORKER = 8
# A stopping pool waits this long for the work in hand (a graceful drain, production);
# `baton dev` asks for DEV_WORKER_SHUTDOWN_TIMEOUT_S: Ctrl-C in development should not
# wait out an AI call. Work cut short is redelivered (every actor is idempotent).
WORKER_SHUTDOWN_TIMEOUT_S = 30.0
DEV_WORKER_SHUTDOWN_TIMEOUT_S = 2.0
READY_TIMEOUT_S = 60.0


def _common_options(*, top: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (``baton --data-dir X dev``
    and ``baton dev --data-dir X`` alike). After the name they default to SUPPRESS, so
    an option given before it is not overwritten by the subcommand's default."""
    common = argparse.ArgumentParser(add_help=False)
    default: Any = None if top else argparse.SUPPRESS
    common.add_argument("--data-dir", default=default, help="data folder (BATON_DATA_DIR, default ./.baton)")
    common.add_argument(
        "--pg-port",
        type=int,
        default=default,
        metavar="PORT",
        help="port of the embedded Postgres (default: the last one used, else 54329); refused when taken",
    )
    common.add_argument(
        "--redis-port",
        type=int,
        default=default,
        metavar="PORT",
        help="port of the embedded Redis (default: the last one used, else 56379); refused when taken",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baton",
        description="Escalation hand-offs for MSP help desks.",
        parents=[_common_options(top=True)],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options(top=False)]

    dev = commands.add_parser(
        "dev", parents=common, help="run everything locally: services, web, workers, demo data"
    )
    dev.add_argument("--port", type=int, default=8000, help="first web port (default 8000)")
    dev.add_argument("--web", type=int, default=1, metavar="N", help="web processes (default 1)")
    dev.add_argument("--workers", type=int, default=1, metavar="M", help="worker processes (default 1)")
    dev.add_argument("--no-seed", action="store_true", help="do not create the demo account")

    serve = commands.add_parser("serve", parents=common, help="run one web process (uvicorn)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1")

    worker = commands.add_parser("worker", parents=common, help="run one Dramatiq worker pool")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=DEV_THREADS_PER_WORKER)
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=WORKER_SHUTDOWN_TIMEOUT_S,
        metavar="S",
        help=f"seconds a stopping pool waits for work in hand (default {WORKER_SHUTDOWN_TIMEOUT_S:g})",
    )

    commands.add_parser("migrate", parents=common, help="apply the database migrations")

    account = commands.add_parser("account", parents=common, help="manage accounts")
    account_commands = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    create = account_commands.add_parser(
        "create", parents=common, help="create an account and print its service token"
    )
    create.add_argument("name")
    create.add_argument("--json", action="store_true")
    rotate = account_commands.add_parser(
        "rotate-token",
        parents=common,
        help="issue a new service token; the old one stops working after the grace",
    )
    rotate.add_argument("account_id")
    rotate.add_argument(
        "--grace",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds the old token keeps working, on every replica (default 0: it stops now)",
    )
    rotate.add_argument("--json", action="store_true")

    token = commands.add_parser("token", parents=common, help="print a user token")
    token.add_argument("user_id")
    token.add_argument(
        "--ttl",
        type=int,
        default=None,
        metavar="S",
        help="lifetime in seconds (default 12 h; at most BATON_MAX_TOKEN_LIFETIME_S)",
    )

    seed = commands.add_parser("seed", parents=common, help="create demo data")
    seed.add_argument("--demo", action="store_true", required=True)
    seed.add_argument(
        "--reset", action="store_true", help="remove the demo account and all it holds, then seed it anew"
    )
    seed.add_argument("--json", action="store_true")
    return parser


def _setup(args: argparse.Namespace, *, durable: bool = True, services: bool = True) -> Any:
    """Data folder, logging, token secret and (unless told not to) Postgres + Redis."""
    from cli.services import ensure_jwt_secret, resolve
    from server.logs import configure_logging
    from settings import SettingsError, get_settings

    if args.data_dir:
        os.environ["BATON_DATA_DIR"] = args.data_dir
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise SystemExit(f"baton: {exc}") from None
    data_dir = Path(settings.data_dir)
    configure_logging(settings)
    ensure_jwt_secret(data_dir)
    ports = {"postgres_port": args.pg_port, "redis_port": args.redis_port}
    found = resolve(data_dir, durable=durable, ports=ports) if services else None
    get_settings.cache_clear()
    return found


def _quiet_migrate() -> None:
    """Apply the migrations, one log line; stdout stays for what scripts read."""
    from cli.migrations import apply_migrations

    apply_migrations()


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup(args)
    _quiet_migrate()
    return 0


def _uuid_argument(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise SystemExit(f"baton: {text!r} is not {what} (a UUID)") from None


def cmd_account(args: argparse.Namespace) -> int:
    if args.account_command == "rotate-token":
        return cmd_account_rotate_token(args)
    return cmd_account_create(args)


def cmd_account_create(args: argparse.Namespace) -> int:
    from server.tokens import mint_service_token
    from settings import get_settings
    from tables.queries.accounts import create_account

    _setup(args)
    _quiet_migrate()
    account_id, jti = asyncio.run(create_account(name=args.name))
    token = mint_service_token(get_settings().jwt_secret or "", account_id, jti=jti)
    if args.json:
        print(json.dumps({"account_id": str(account_id), "service_token": token}))
    else:
        print(f"account {args.name}: {account_id}\nservice token: {token}")
    return 0


def cmd_account_rotate_token(args: argparse.Namespace) -> int:
    from server.tokens import mint_service_token
    from settings import get_settings
    from tables.queries.accounts import rotate_service_token

    account_id = _uuid_argument(args.account_id, "an account id")
    if not 0 <= args.grace < float("inf"):
        raise SystemExit(f"baton: --grace must be 0 or more seconds, not {args.grace:g}")
    _setup(args)
    _quiet_migrate()
    rotated = asyncio.run(rotate_service_token(account_id=account_id, grace_s=args.grace))
    if rotated is None:
        raise SystemExit(f"baton: no such account: {account_id}")
    token = mint_service_token(get_settings().jwt_secret or "", account_id, jti=rotated.jti)
    until = rotated.previous_valid_until.isoformat()
    if args.json:
        print(
            json.dumps({"account_id": str(account_id), "service_token": token, "previous_valid_until": until})
        )
    else:
        print(f"new service token: {token}\nthe previous one works until {until}")
    log.info("account %s: service token rotated; the previous one works until %s", account_id, until)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from server.tokens import USER_TOKEN_TTL_S, mint_user_token
    from settings import get_settings
    from tables.queries.people import UserState, user_state

    user_id = _uuid_argument(args.user_id, "a user id")
    _setup(args)
    settings = get_settings()
    ttl_s = min(USER_TOKEN_TTL_S, settings.max_token_lifetime_s) if args.ttl is None else args.ttl
    if not 0 < ttl_s <= settings.max_token_lifetime_s:
        raise SystemExit(
            f"baton: --ttl must be between 1 and {settings.max_token_lifetime_s} seconds "
            f"(BATON_MAX_TOKEN_LIFETIME_S), not {ttl_s}"
        )
    _quiet_migrate()
    state = asyncio.run(user_state(user_id=user_id))
    if state is UserState.UNKNOWN:
        raise SystemExit(f"baton: no such user: {user_id}")
    if state is UserState.INELIGIBLE:
        raise SystemExit(f"baton: user {user_id} is inactive or deleted; a token for them would be refused")
    print(mint_user_token(settings.jwt_secret or "", user_id, ttl_s=ttl_s))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from cli.demo import seed_demo

    _setup(args)
    _quiet_migrate()
    demo = asyncio.run(seed_demo(reset=args.reset))
    if args.json:
        print(json.dumps(demo))
    else:
        _print_demo(demo)
    return 0


def _print_demo(demo: dict[str, Any], base_url: str | None = None) -> None:
    print(f"Demo account {demo['account_name']} ({demo['account_id']})")
    for user in demo["users"]:
        line = f"  {user['name']:<16} {user['role']:<10}"
        if base_url and user["active"]:
            line += f" {base_url}/inbox#token={user['token']}"
        elif user["active"]:
            line += f" token: {user['token']}"
        else:
            line += " (inactive)"
        print(line)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from settings import get_settings

    _setup(args)
    settings = get_settings()
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        # Our own log setup (server.logs) is kept; uvicorn adds only its access log.
        log_config=None,
        # httptools (C) parses HTTP at a fraction of h11's CPU per request; ours adds the
        # 16 KiB limit on a request's head (431), which uvicorn's lacks.
        http="server.http_head_limit:HeadLimitedHttpToolsProtocol",
        # libuv's loop: less CPU per socket event than asyncio's selector loop, which
        # shows in the inbox fan-out's tail latency (bench/fanout.py).
        loop="uvloop",
        # uvicorn's sans-I/O websockets, plus a direct write of inbox frames (server.inbox_wire).
        ws="server.inbox_wire:BatonWebSocketProtocol",
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Inbox frames are small JSON sent to hundreds of sockets: compressing each one
        # per socket costs more CPU than the bytes it saves on a LAN.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    from settings import get_settings

    _setup(args)
    from cli.worker_metrics import export_worker_metrics_env

    export_worker_metrics_env(get_settings())
    # Read by dramatiq.worker when first imported: how long an idle consumer blocks
    # before polling again (library default 1 s makes an idle worker slow to react).
    os.environ["dramatiq_worker_timeout"] = str(get_settings().worker_idle_poll_ms)  # noqa: SIM112
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from cli.processes import die_with_parent

    # Each Dramatiq worker process (forked by this one) dies with it, even if this one
    # is SIGKILLed: none is left taking messages from a pool that is gone.
    os.register_at_fork(after_in_child=die_with_parent(signal.SIGKILL))

    dramatiq_args = make_argument_parser().parse_args(
        [
            "actors",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            "--worker-shutdown-timeout",
            str(int(args.shutdown_timeout * 1000)),
        ]
    )
    return int(dramatiq_main(dramatiq_args) or 0)


def _wait_ready(url: str, timeout_s: float, stop: Callable[[], bool] = lambda: False) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop():
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def cmd_dev(args: argparse.Namespace) -> int:
    import signal

    from cli.demo import has_accounts, seed_demo
    from cli.supervisor import Child, Supervisor
    from settings import get_settings

    started = time.monotonic()
    # Bytecode for warm starts: where PYTHONDONTWRITEBYTECODE is set (CI machines, many
    # containers) every web and worker process compiled each module it imports again
    # (~1.5 s of CPU to import the app here, ~0.55 s from .pyc files). The children of
    # a development run write them, once; production images compile at build time.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    services = _setup(args)
    log.info("Postgres and Redis: %s", services.describe())
    _quiet_migrate()
    if not args.no_seed and not asyncio.run(has_accounts()):
        asyncio.run(seed_demo())
        log.info("created the demo account")
    demo_psa = _start_demo_psa(Path(get_settings().data_dir))

    me = [sys.executable, "-m", "cli"]
    ports = [args.port + i for i in range(args.web)]
    # The children's links (e-mails' pick-up links, chat messages' inbox link) point at
    # the first web URL the banner prints, unless one was set (a tunnel, a proxy).
    os.environ.setdefault("BATON_PUBLIC_URL", f"http://127.0.0.1:{ports[0]}")
    children = [Child(f"web-{i + 1}", [*me, "serve", "--port", str(port)]) for i, port in enumerate(ports)]
    worker = [*me, "worker", "--shutdown-timeout", str(DEV_WORKER_SHUTDOWN_TIMEOUT_S)]
    # A worker pool dies with SIGKILL, not SIGTERM: the kernel sends the death signal again
    # each time the child is handed to another of our threads as they end (twice, with the
    # demo PSA's thread), and Dramatiq takes a second SIGTERM as "exit now" without
    # stopping its threads, which then hung for good. Its own worker processes die with it
    # (cmd_worker); what they held is redelivered.
    children += [Child(f"worker-{j + 1}", worker, death_signal=signal.SIGKILL) for j in range(args.workers)]
    supervisor = Supervisor(children)

    def _stop(signum: int, frame: Any) -> None:
        supervisor.request_stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    supervisor.start()
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        stopped = lambda: supervisor.stop_requested  # noqa: E731
        if not all(_wait_ready(url, READY_TIMEOUT_S, stopped) for url in urls):
            if stopped():
                return 0
            log.error("a web process did not become ready within %.0f s; see the log above", READY_TIMEOUT_S)
        else:
            log.info("ready in %.1f s", time.monotonic() - started)
            _banner(urls, services)
        supervisor.run_until_stopped()
    finally:
        log.info("stopping…")
        supervisor.stop()
        demo_psa.stop()
        services.stop()
    return 0


def _start_demo_psa(data_dir: Path) -> Any:
    """The demo's HaloPSA, on 127.0.0.1; the web and workers started after this may call
    it and no other local address (BATON_OUTBOUND_ALLOW_ENDPOINTS, added to what is set)."""
    from cli.demo import DEMO_PSA_PORT, point_demo_psa_at
    from cli.demo_psa import DemoPsa
    from cli.processes import free_port

    psa = DemoPsa(free_port(DEMO_PSA_PORT), data_dir)
    psa.start()
    endpoint = f"127.0.0.1:{psa.port}"
    allowed = [e for e in os.environ.get("BATON_OUTBOUND_ALLOW_ENDPOINTS", "").split(",") if e.strip()]
    os.environ["BATON_OUTBOUND_ALLOW_ENDPOINTS"] = ",".join([*allowed, endpoint])
    asyncio.run(point_demo_psa_at(psa.base_url))
    return psa


def _banner(urls: list[str], services: Any) -> None:
    from cli.demo import demo_summary

    print()
    print("Baton is running.")
    for url in urls:
        print(f"  web         {url}   (inbox: {url}/inbox, API docs: {url}/schema)")
    print(f"  services    {services.describe()}")
    print(f"  links       {os.environ['BATON_PUBLIC_URL']}   (where e-mails' pick-up links point)")
    demo = asyncio.run(demo_summary())
    if demo:
        print(
            "Sign in to the inbox as a demo user (the token rides in the link's fragment,"
            " which browsers never send to the server):"
        )
        _print_demo(demo, urls[0])
        _print_try_the_api(demo, urls[0])
    print("Press Ctrl-C to stop.")
    print(flush=True)


def _print_try_the_api(demo: dict[str, Any], base_url: str) -> None:
    """A curl that escalates a demo session as its technician, ready to paste, and the
    demo's service token (development only: it writes the account's host-app data)."""
    technician = next((u for u in demo["users"] if u["role"] == "technician" and u["active"]), None)
    session = next((s for s in demo["sessions"] if s["status"] == "active"), None)
    print("Try the API (docs/api.md):")
    if technician and session:
        body = json.dumps(
            {"intent": "escalate", "engineer_notes": "Tried the usual; need a senior.", "priority": "high"}
        )
        print(f"  # {technician['name']} escalates “{session['problem_summary']}”; watch the inbox")
        print(
            f"  curl -sS -X POST {base_url}/api/v1/sessions/{session['id']}/handoffs"
            f" -H 'Authorization: Bearer {technician['token']}'"
            f" -H 'Content-Type: application/json' -d '{body}'"
        )
    else:
        print("  (every demo session is handed off already: `baton seed --demo --reset` starts over)")
    print(f"  host-app service token of the demo account (development only): {demo['service_token']}")


COMMANDS = {
    "dev": cmd_dev,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "account": cmd_account,
    "token": cmd_token,
    "seed": cmd_seed,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)
