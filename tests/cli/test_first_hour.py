"""What a new user meets in the first hour with the `baton` command."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path

import asyncpg
import pytest

from cli.main import _parser
from tests.conftest import REPO_ROOT, SessionServices
from tests.conftest import run_baton as baton

MIGRATIONS = sorted((REPO_ROOT / "tables" / "piccolo_migrations").glob("tables_*.py"))


EVERY_COMMAND = [
    ["dev"],
    ["serve"],
    ["worker"],
    ["migrate"],
    ["account", "create", "Contoso"],
    ["token", str(uuid.uuid4())],
    ["seed", "--demo"],
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: " ".join(c[:2]))
def test_data_dir_and_ports_are_taken_before_and_after_every_command(command: list[str]) -> None:
    options = ["--data-dir", "/srv/baton", "--pg-port", "15432", "--redis-port", "16379"]
    for argv in ([*options, *command], [*command, *options]):
        args = _parser().parse_args(argv)
        assert (args.data_dir, args.pg_port, args.redis_port) == ("/srv/baton", 15432, 16379), argv


def test_a_data_dir_after_the_command_is_the_one_used(tmp_path: Path) -> None:
    done = baton("migrate", "--data-dir", str(tmp_path), env={"BATON_JWT_SECRET": ""})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "jwt_secret").exists(), "the development secret went elsewhere"


async def test_seeding_the_demo_again_keeps_its_one_account_and_reset_rebuilds_it(
    db: asyncpg.Connection,
) -> None:
    first = baton("seed", "--demo", "--json")
    second = baton("seed", "--demo", "--json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    account_id = json.loads(first.stdout)["account_id"]
    assert json.loads(second.stdout)["account_id"] == account_id
    assert await db.fetchval("SELECT count(*) FROM accounts") == 1

    reset = baton("seed", "--demo", "--reset", "--json")
    assert reset.returncode == 0, reset.stderr
    new_id = json.loads(reset.stdout)["account_id"]
    assert new_id != account_id
    assert [str(r["id"]) for r in await db.fetch("SELECT id FROM accounts")] == [new_id]
    assert (
        await db.fetchval("SELECT count(*) FROM ai_sessions")
        == len(json.loads(reset.stdout)["sessions"])
        == 3
    )


def test_migrate_says_in_one_line_what_it_applied(services: SessionServices) -> None:
    name = f"baton_fresh_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(services.database_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        env = {"DATABASE_URL": services.database_url.rpartition("/")[0] + f"/{name}"}
        fresh = baton("migrate", env=env)
        again = baton("migrate", env=env)
    finally:
        asyncio.run(run(f"DROP DATABASE {name} WITH (FORCE)"))
    assert fresh.returncode == 0, fresh.stderr
    said = [line for line in fresh.stderr.splitlines() if "migrat" in line.lower()]
    assert len(said) == 1, fresh.stderr
    assert f"database migrated: applied {len(MIGRATIONS)} migrations" in said[0]
    assert "already complete" not in fresh.stderr + fresh.stdout and "TABLES" not in fresh.stdout
    assert fresh.stdout == ""
    assert f"database up to date: {len(MIGRATIONS)} migrations applied earlier, none pending" in again.stderr


def test_a_port_asked_for_that_is_taken_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {"DATABASE_URL": "", "BATON_DATA_DIR": str(tmp_path)}
        done = baton("migrate", "--pg-port", str(port), env=env)
    assert done.returncode != 0
    assert (
        f"Postgres cannot listen on port {port}: it is taken. Choose another with --pg-port." in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_a_remembered_port_that_is_taken_moves_and_says_so(postgres_home: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (postgres_home / "services.json").write_text(json.dumps({"postgres_port": port}))
        done = baton("migrate", env={"DATABASE_URL": "", "BATON_DATA_DIR": str(postgres_home)})
    assert done.returncode == 0, done.stderr
    moved = json.loads((postgres_home / "services.json").read_text())["postgres_port"]
    assert moved != port
    assert (
        f"Postgres: port {port} is taken; listening on {moved} instead (choose one with --pg-port)"
        in done.stderr
    )
