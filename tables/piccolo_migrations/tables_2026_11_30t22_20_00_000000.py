"""Outbox jobs know when they are done: ``outbox.done_at``.

Set by the worker when the job's message (or a retry of it) has succeeded
(``actors.outbox.OutboxJobDone``). A job sent but never done, because its message was
lost in the broker (Redis restarting, a worker killed), is sent again by the sweep
(``actors/delivery_sweep.py``). The SQL is frozen on purpose.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-30T22:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox jobs record when they are done"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)

    async def add_column():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("ALTER TABLE outbox ADD COLUMN IF NOT EXISTS done_at timestamptz NULL")
        # The sweep reads jobs sent and not done; done ones drop out.
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS outbox_sent_not_done ON outbox (sent_at) "
            "WHERE sent_at IS NOT NULL AND done_at IS NULL"
        )

    async def drop_column():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS outbox_sent_not_done")
        await engine.run_ddl("ALTER TABLE outbox DROP COLUMN IF EXISTS done_at")

    manager.add_raw(add_column)
    manager.add_raw_backwards(drop_column)

    return manager
