"""``baton``: one entry point for every process and chore.

    baton dev [--port 8000] [--web N] [--workers M]   the whole product, locally
    baton serve [--port P]                            one web process
    baton worker [--processes N] [--threads T]        one Dramatiq worker pool
    baton migrate                                     apply the Piccolo migrations
    baton account create NAME [--json]                a new account + its service token
    baton token USER_ID                               a user token (development)
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
from pathlib import Path
from typing import Any

log = logging.getLogger("baton.cli")

DEV_THREADS_PER_WORKER = 8
WORKER_SHUTDOWN_TIMEOUT_MS = 30_000
READY_TIMEOUT_S = 60.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baton", description="Escalation hand-offs for MSP help desks.")
    parser.add_argument("--data-dir", help="data folder (BATON_DATA_DIR, default ./.baton)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run everything locally: services, web, workers, demo data")
    dev.add_argument("--port", type=int, default=8000, help="first web port (default 8000)")
    dev.add_argument("--web", type=int, default=1, metavar="N", help="web processes (default 1)")
    dev.add_argument("--workers", type=int, default=1, metavar="M", help="worker processes (default 1)")
    dev.add_argument("--no-seed", action="store_true", help="do not create the demo account")

    serve = commands.add_parser("serve", help="run one web process (uvicorn)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1")

    worker = commands.add_parser("worker", help="run one Dramatiq worker pool")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=DEV_THREADS_PER_WORKER)

    commands.add_parser("migrate", help="apply the database migrations")

    account = commands.add_parser("account", help="manage accounts")
    account_commands = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    create = account_commands.add_parser("create", help="create an account and print its service token")
    create.add_argument("name")
    create.add_argument("--json", action="store_true")

    token = commands.add_parser("token", help="print a user token (development)")
    token.add_argument("user_id")

    seed = commands.add_parser("seed", help="create demo data")
    seed.add_argument("--demo", action="store_true", required=True)
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
    found = resolve(data_dir, durable=durable) if services else None
    get_settings.cache_clear()
    return found


async def _migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"baton: migrations failed: {result.message}")


def _quiet_migrate() -> None:
    # Piccolo prints its progress to stdout; keep stdout for what scripts read.
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        asyncio.run(_migrate())


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup(args)
    _quiet_migrate()
    log.info("migrations applied")
    return 0


def cmd_account_create(args: argparse.Namespace) -> int:
    from cli.demo import create_account
    from server.tokens import mint_service_token
    from settings import get_settings

    _setup(args)
    _quiet_migrate()
    account_id = asyncio.run(create_account(args.name))
    token = mint_service_token(get_settings().jwt_secret or "", account_id)
    if args.json:
        print(json.dumps({"account_id": str(account_id), "service_token": token}))
    else:
        print(f"account {args.name}: {account_id}\nservice token: {token}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    import uuid

    from server.tokens import mint_user_token
    from settings import get_settings

    _setup(args, services=False)
    try:
        user_id = uuid.UUID(args.user_id)
    except ValueError:
        raise SystemExit(f"baton: {args.user_id!r} is not a user id (a UUID)") from None
    print(mint_user_token(get_settings().jwt_secret or "", user_id))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from cli.demo import seed_demo

    _setup(args)
    _quiet_migrate()
    demo = asyncio.run(seed_demo())
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
    from settings import get_settings

    _setup(args)
    from cli.worker_metrics import export_worker_metrics_env

    export_worker_metrics_env(get_settings())
    # Read by dramatiq.worker when first imported: how long an idle consumer blocks
    # before polling again (library default 1 s makes an idle worker slow to react).
    os.environ["dramatiq_worker_timeout"] = str(get_settings().worker_idle_poll_ms)  # noqa: SIM112
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    dramatiq_args = make_argument_parser().parse_args(
        [
            "actors",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            "--worker-shutdown-timeout",
            str(WORKER_SHUTDOWN_TIMEOUT_MS),
        ]
    )
    return int(dramatiq_main(dramatiq_args) or 0)


def _wait_ready(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
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

    started = time.monotonic()
    services = _setup(args)
    log.info("Postgres and Redis: %s", services.describe())
    _quiet_migrate()
    demo = None
    if not args.no_seed and not asyncio.run(has_accounts()):
        demo = asyncio.run(seed_demo())
        log.info("created the demo account")

    me = [sys.executable, "-m", "cli"]
    ports = [args.port + i for i in range(args.web)]
    children = [Child(f"web-{i + 1}", [*me, "serve", "--port", str(port)]) for i, port in enumerate(ports)]
    children += [Child(f"worker-{j + 1}", [*me, "worker"]) for j in range(args.workers)]
    supervisor = Supervisor(children)

    def _stop(signum: int, frame: Any) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    supervisor.start()
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        if not all(_wait_ready(url, READY_TIMEOUT_S) for url in urls):
            log.error("a web process did not become ready within %.0f s; see the log above", READY_TIMEOUT_S)
        else:
            log.info("ready in %.1f s", time.monotonic() - started)
            _banner(urls, demo)
        supervisor.run_until_stopped()
    finally:
        log.info("stopping…")
        supervisor.stop()
        services.stop()
    return 0


def _banner(urls: list[str], demo: dict[str, Any] | None) -> None:
    print()
    print("Baton is running.")
    for url in urls:
        print(f"  web         {url}   (inbox: {url}/inbox, API docs: {url}/schema)")
    if demo is None:
        from cli.demo import demo_summary

        demo = asyncio.run(demo_summary())
    if demo:
        print(
            "Sign in to the inbox as a demo user (the token rides in the link's fragment,"
            " which browsers never send to the server):"
        )
        _print_demo(demo, urls[0])
    print("Press Ctrl-C to stop.")
    print(flush=True)


COMMANDS = {
    "dev": cmd_dev,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "account": cmd_account_create,
    "token": cmd_token,
    "seed": cmd_seed,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)
