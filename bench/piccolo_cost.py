"""What one query costs in CPU through Piccolo's builder, ``Table.raw`` and bare asyncpg.

    uv run python bench/piccolo_cost.py [--queries N]

Starts an embedded Postgres in a temporary folder, migrates, writes one hand-off, and
reads it back by primary key ``N`` times each way, one query at a time on one loop: the
builder (``SessionHandoff.select(...).where(...).first()``), ``SessionHandoff.raw(...)``
and ``conn.fetchrow`` on a connection of the same pool. The figure is this process's CPU
per query (``time.process_time``), so Postgres' own work is left out: what a web replica
pays on its two shared cores. The same for an ``UPDATE … RETURNING`` by the builder.

The data layer's rule (tables/queries/): the builder everywhere but the click path,
where these figures say it would show.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cli.embedded_postgres import EmbeddedPostgres  # noqa: E402
from cli.processes import free_port  # noqa: E402

WARMUP = 200


async def _cpu_per_query_ms(run: Callable[[], Awaitable[Any]], queries: int) -> float:
    for _ in range(WARMUP):
        await run()
    started = time.process_time()
    for _ in range(queries):
        await run()
    return (time.process_time() - started) / queries * 1000


async def _measure(queries: int) -> dict[str, float]:
    from piccolo.engine import engine_finder

    from tables import Account, AiSession, SessionHandoff, User, db
    from tables.pool import POOL_OPTIONS

    engine: Any = engine_finder()
    await engine.start_connection_pool(min_size=1, max_size=4, **POOL_OPTIONS)
    try:
        account, user, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await Account.insert(Account(id=account, name="Bench")).run()
        await User.insert(User(id=user, account_id=account, email="b@example.test", name="B")).run()
        await AiSession.insert(AiSession(id=session, account_id=account, user_id=user)).run()
        handoff = uuid.uuid4()
        await SessionHandoff.insert(
            SessionHandoff(
                id=handoff, session_id=session, account_id=account, handed_off_by=user, intent="park"
            )
        ).run()
        h = SessionHandoff
        columns = (h.id, h.session_id, h.intent, h.state, h.priority, h.engineer_notes, h.created_at)
        sql = (
            "SELECT id, session_id, intent, state, priority, engineer_notes, created_at "
            "FROM session_handoffs WHERE id = $1"
        )
        raw_sql = sql.replace("$1", "{}")

        async def builder() -> Any:
            return await h.select(*columns).where(h.id == handoff).first()

        async def table_raw() -> Any:
            return await h.raw(raw_sql, handoff)

        async def builder_update() -> Any:
            return await h.update({h.priority: "high"}).where(h.id == handoff).returning(h.id, h.priority)

        async with engine.pool.acquire() as conn:

            async def asyncpg_fetchrow() -> Any:
                return await conn.fetchrow(sql, handoff)

            async def asyncpg_update() -> Any:
                return await conn.fetchrow(
                    "UPDATE session_handoffs SET priority = 'high' WHERE id = $1 RETURNING id, priority",
                    handoff,
                )

            figures = {
                "asyncpg_select_ms": await _cpu_per_query_ms(asyncpg_fetchrow, queries),
                "asyncpg_update_ms": await _cpu_per_query_ms(asyncpg_update, queries),
            }

        async def db_fetchrow() -> Any:
            return await db.fetchrow(sql, handoff)

        figures["db_fetchrow_select_ms"] = await _cpu_per_query_ms(db_fetchrow, queries)

        def build_only() -> Any:
            query = h.select(*columns).where(h.id == handoff).first()
            return query.querystrings[0].compile_string(engine_type="postgres")

        started = time.process_time()
        for _ in range(queries):
            build_only()
        figures["builder_compile_only_ms"] = (time.process_time() - started) / queries * 1000
        figures["table_raw_select_ms"] = await _cpu_per_query_ms(table_raw, queries)
        figures["builder_select_ms"] = await _cpu_per_query_ms(builder, queries)
        figures["builder_update_ms"] = await _cpu_per_query_ms(builder_update, queries)
        return figures
    finally:
        await engine.close_connection_pool()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-piccolo-cost-") as folder:
        postgres = EmbeddedPostgres(Path(folder) / "postgres", free_port(), durable=False)
        postgres.start()
        try:
            os.environ["DATABASE_URL"] = postgres.url
            from piccolo.apps.migrations.commands.forwards import run_forwards

            result = asyncio.run(run_forwards("all"))
            assert result.success, result.message
            # uvloop, as `baton serve` runs it.
            figures = uvloop.run(_measure(args.queries))
        finally:
            postgres.stop()
    for name, value in figures.items():
        print(f"{name:<22} {value:.3f} ms CPU per query")
    for way in ("builder", "table_raw"):
        extra = figures[f"{way}_select_ms"] - figures["db_fetchrow_select_ms"]
        print(f"{way} over tables.db.fetchrow (same pool, same acquire): {extra:+.3f} ms per select")


if __name__ == "__main__":
    main()
