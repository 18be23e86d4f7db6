"""The outbox wakes the workers: a NOTIFY on every insert into ``outbox``.

A statement-level trigger, so every writer of jobs (create, claim, release, reminder)
wakes the relays without knowing about them, and the notification goes out on COMMIT
only: a rolled-back change wakes nobody. Postgres folds identical notifications of one
transaction into one. The workers LISTEN (actors/outbox.py) and relay at once; their
one-second sweep still catches anything a notification missed (a relay reconnecting).
The SQL is frozen on purpose: a migration must not change when the code does.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-30T21:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notify the outbox relays on insert"

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION baton_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_outbox', '');
    RETURN NULL;
END;
$$
"""

CREATE_TRIGGER = """
CREATE TRIGGER outbox_notify_relays
AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION baton_outbox_notify()
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)

    async def create_trigger():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(CREATE_FUNCTION)
        await engine.run_ddl(CREATE_TRIGGER)

    async def drop_trigger():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP TRIGGER IF EXISTS outbox_notify_relays ON outbox")
        await engine.run_ddl("DROP FUNCTION IF EXISTS baton_outbox_notify()")

    manager.add_raw(create_trigger)
    manager.add_raw_backwards(drop_trigger)

    return manager
