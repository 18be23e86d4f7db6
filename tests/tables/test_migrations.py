"""The migrated schema itself refuses what the product promises never happens.

Only the ``database_url`` fixture (a migrated database) is assumed. Every test makes its
own account with fresh ids, so rows left by other tests never matter.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from tables.piccolo_app import all_tables

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@dataclass
class Tenant:
    """An account with one user and one session: the least a hand-off needs."""

    account_id: uuid.UUID
    user_id: uuid.UUID
    session_id: uuid.UUID


async def make_tenant(conn: asyncpg.Connection) -> Tenant:
    tenant = Tenant(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Acme MSP')", tenant.account_id)
    await conn.execute(
        "INSERT INTO users (id, account_id, email, name, account_role) "
        "VALUES ($1, $2, 'tech@example.com', 'Tess Tech', 'technician')",
        tenant.user_id,
        tenant.account_id,
    )
    await make_session(conn, tenant, tenant.session_id)
    return tenant


async def make_session(conn: asyncpg.Connection, tenant: Tenant, session_id: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO ai_sessions (id, account_id, user_id, problem_summary) "
        "VALUES ($1, $2, $3, 'VPN drops every hour')",
        session_id,
        tenant.account_id,
        tenant.user_id,
    )


async def insert_handoff(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    session_id: uuid.UUID | None = None,
    intent: str = "escalate",
    state: str = "open",
    idempotency_key: str | None = None,
) -> uuid.UUID:
    claimed_by = tenant.user_id if state == "claimed" else None
    handoff_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO session_handoffs "
        "(session_id, account_id, handed_off_by, intent, state, claimed_by, idempotency_key) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        session_id or tenant.session_id,
        tenant.account_id,
        tenant.user_id,
        intent,
        state,
        claimed_by,
        idempotency_key,
    )
    return handoff_id


async def test_a_session_cannot_have_two_open_handoffs(connection: asyncpg.Connection) -> None:
    tenant = await make_tenant(connection)
    await insert_handoff(connection, tenant, intent="park")

    with pytest.raises(asyncpg.UniqueViolationError) as refused:
        await insert_handoff(connection, tenant, intent="escalate")

    assert refused.value.constraint_name == "session_handoffs_one_open_per_session"


async def test_a_session_may_be_handed_off_again_once_its_handoff_is_no_longer_open(
    connection: asyncpg.Connection,
) -> None:
    tenant = await make_tenant(connection)
    await insert_handoff(connection, tenant, intent="park", state="superseded")
    await insert_handoff(connection, tenant, state="claimed")

    await insert_handoff(connection, tenant)

    open_count = await connection.fetchval(
        "SELECT count(*) FROM session_handoffs WHERE session_id = $1 AND state = 'open'",
        tenant.session_id,
    )
    assert open_count == 1


async def test_a_delivery_is_recorded_once_per_handoff_channel_and_recipient(
    connection: asyncpg.Connection,
) -> None:
    tenant = await make_tenant(connection)
    handoff_id = await insert_handoff(connection, tenant)
    insert = "INSERT INTO deliveries (account_id, handoff_id, channel, recipient) VALUES ($1, $2, $3, $4)"
    await connection.execute(insert, tenant.account_id, handoff_id, "email", "senior@example.com")
    # Another recipient, or another channel to the same recipient, is another delivery.
    await connection.execute(insert, tenant.account_id, handoff_id, "email", "boss@example.com")
    await connection.execute(insert, tenant.account_id, handoff_id, "bell", "senior@example.com")

    with pytest.raises(asyncpg.UniqueViolationError) as refused:
        await connection.execute(insert, tenant.account_id, handoff_id, "email", "senior@example.com")

    assert refused.value.constraint_name == "deliveries_ledger_key"


async def test_an_idempotency_key_is_unique_within_an_account(connection: asyncpg.Connection) -> None:
    tenant = await make_tenant(connection)
    other_session = uuid.uuid4()
    await make_session(connection, tenant, other_session)
    key = f"key-{uuid.uuid4()}"
    await insert_handoff(connection, tenant, idempotency_key=key)

    with pytest.raises(asyncpg.UniqueViolationError) as refused:
        await insert_handoff(connection, tenant, session_id=other_session, idempotency_key=key)

    assert refused.value.constraint_name == "session_handoffs_idempotency_key"


async def test_two_accounts_may_use_the_same_idempotency_key(connection: asyncpg.Connection) -> None:
    first, second = await make_tenant(connection), await make_tenant(connection)
    key = f"key-{uuid.uuid4()}"

    await insert_handoff(connection, first, idempotency_key=key)
    await insert_handoff(connection, second, idempotency_key=key)

    assert (
        await connection.fetchval("SELECT count(*) FROM session_handoffs WHERE idempotency_key = $1", key)
        == 2
    )


async def test_handoffs_without_an_idempotency_key_do_not_collide(connection: asyncpg.Connection) -> None:
    tenant = await make_tenant(connection)
    other_session = uuid.uuid4()
    await make_session(connection, tenant, other_session)

    await insert_handoff(connection, tenant)
    await insert_handoff(connection, tenant, session_id=other_session)


async def test_an_unknown_intent_is_refused(connection: asyncpg.Connection) -> None:
    tenant = await make_tenant(connection)

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await insert_handoff(connection, tenant, intent="vacation")

    assert refused.value.constraint_name == "session_handoffs_intent_check"


@pytest.mark.parametrize(
    ("table", "column", "constraint"),
    [
        ("session_handoffs", "state", "session_handoffs_state_check"),
        ("session_handoffs", "priority", "session_handoffs_priority_check"),
        ("session_handoffs", "assessment_status", "session_handoffs_assessment_status_check"),
        ("session_handoffs", "resolution_outcome", "session_handoffs_resolution_outcome_check"),
        ("users", "account_role", "users_account_role_check"),
        ("ai_sessions", "status", "ai_sessions_status_check"),
        ("deliveries", "status", "deliveries_status_check"),
        ("notification_channels", "kind", "notification_channels_kind_check"),
        ("psa_connections", "kind", "psa_connections_kind_check"),
    ],
)
async def test_an_unknown_enum_value_is_refused(
    connection: asyncpg.Connection, table: str, column: str, constraint: str
) -> None:
    tenant = await make_tenant(connection)
    handoff_id = await insert_handoff(connection, tenant)
    await connection.execute(
        "INSERT INTO deliveries (account_id, handoff_id, channel, recipient) "
        "VALUES ($1, $2, 'email', 'senior@example.com')",
        tenant.account_id,
        handoff_id,
    )
    await connection.execute(
        "INSERT INTO notification_channels (account_id, kind, url) VALUES ($1, 'slack', 'https://hooks')",
        tenant.account_id,
    )
    await connection.execute(
        "INSERT INTO psa_connections (account_id, kind, base_url) VALUES ($1, 'halopsa', 'https://psa')",
        tenant.account_id,
    )

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        # Identifiers come from the parametrize list above, never from input.
        await connection.execute(
            f"UPDATE {table} SET {column} = 'bogus' WHERE account_id = $1", tenant.account_id
        )

    assert refused.value.constraint_name == constraint


async def test_a_claimed_handoff_names_its_claimer(connection: asyncpg.Connection) -> None:
    tenant = await make_tenant(connection)
    handoff_id = await insert_handoff(connection, tenant)

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await connection.execute("UPDATE session_handoffs SET state = 'claimed' WHERE id = $1", handoff_id)

    assert refused.value.constraint_name == "session_handoffs_claimed_by_check"


async def test_all_tables_lists_every_table_children_before_parents(
    connection: asyncpg.Connection,
) -> None:
    names = [table._meta.tablename for table in all_tables()]
    in_database = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'migration'"
    )
    assert sorted(names) == sorted(row["tablename"] for row in in_database)

    references = await connection.fetch(
        "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
        "FROM pg_constraint WHERE contype = 'f' AND conrelid <> confrelid"
    )
    for row in references:
        assert names.index(row["child"]) < names.index(row["parent"]), row
