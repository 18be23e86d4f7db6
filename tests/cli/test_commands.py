"""The `baton` commands that scripts use: account create, token, seed, migrate."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg

from server.tokens import decode
from tests.conftest import TEST_JWT_SECRET
from tests.conftest import run_baton as baton


async def test_account_create_prints_an_id_and_a_service_token_for_it(db: asyncpg.Connection) -> None:
    done = baton("account", "create", "Contoso MSP", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    claims = decode(TEST_JWT_SECRET, printed["service_token"])
    assert claims["sub"].startswith("service:")
    assert claims["account_id"] == printed["account_id"]
    name = await db.fetchval("SELECT name FROM accounts WHERE id = $1", uuid.UUID(printed["account_id"]))
    assert name == "Contoso MSP"


async def a_user(db: asyncpg.Connection) -> str:
    """An active user of a new account (``baton token`` refuses an id of nobody)."""
    account_id, user_id = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Contoso MSP')", account_id)
    await db.execute(
        "INSERT INTO users (id, account_id, email, name, account_role) "
        "VALUES ($1, $2, 'dana@example.com', 'Dana Okafor', 'owner')",
        user_id,
        account_id,
    )
    return str(user_id)


async def test_token_prints_a_user_token_and_nothing_else(db: asyncpg.Connection) -> None:
    user_id = await a_user(db)
    done = baton("token", user_id)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert "\n" not in token
    assert decode(TEST_JWT_SECRET, token)["sub"] == user_id


def test_token_refuses_something_that_is_not_a_user_id() -> None:
    done = baton("token", "dana")
    assert done.returncode != 0
    assert "'dana' is not a user id" in done.stderr


async def test_without_a_secret_tokens_are_signed_with_one_kept_in_the_data_folder(
    tmp_path: Path, db: asyncpg.Connection
) -> None:
    env = {"BATON_JWT_SECRET": "", "BATON_DATA_DIR": str(tmp_path)}
    first = baton("token", await a_user(db), env=env).stdout.strip()
    second = baton("token", await a_user(db), env=env).stdout.strip()
    kept = (tmp_path / "jwt_secret").read_text().strip()
    assert len(kept) >= 32
    assert decode(kept, first) and decode(kept, second)
    assert oct((tmp_path / "jwt_secret").stat().st_mode & 0o777) == "0o600"


async def test_seed_demo_creates_the_demo_account_with_its_people_and_sessions(
    db: asyncpg.Connection,
) -> None:
    done = baton("seed", "--demo", "--json")
    assert done.returncode == 0, done.stderr
    demo = json.loads(done.stdout)
    roles = sorted((u["role"], u["active"]) for u in demo["users"])
    assert roles == [
        ("admin", True),
        ("engineer", False),
        ("engineer", True),
        ("owner", True),
        ("technician", True),
    ]
    for user in demo["users"]:
        assert decode(TEST_JWT_SECRET, user["token"])["sub"] == user["id"]
    assert len(demo["sessions"]) == 3
    assert sum(1 for s in demo["sessions"] if s["psa_ticket_id"]) == 1

    account_id = uuid.UUID(demo["account_id"])
    sessions = await db.fetch(
        "SELECT id, step_count, is_branching, psa_connection_id, conversation_messages "
        "FROM ai_sessions WHERE account_id = $1",
        account_id,
    )
    assert len(sessions) == 3
    for session in sessions:
        steps = await db.fetchval("SELECT count(*) FROM session_steps WHERE session_id = $1", session["id"])
        assert steps == session["step_count"] > 0
        assert json.loads(session["conversation_messages"])
    assert any(s["is_branching"] for s in sessions)
    branches = await db.fetchval(
        "SELECT count(*) FROM session_branches b JOIN ai_sessions s ON s.id = b.session_id "
        "WHERE s.account_id = $1",
        account_id,
    )
    assert branches >= 2


def test_migrate_is_idempotent() -> None:
    first = baton("migrate")
    second = baton("migrate")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
