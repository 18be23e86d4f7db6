"""Service tokens can be rotated: the account names its current token and the one it replaced.

``accounts.service_token_jti``: the ``jti`` of the account's current service token; NULL
until the account's first rotation (or creation by ``baton account create``), while every
service token signed for the account is accepted, as before. ``previous_service_token_jti``
and ``previous_service_token_valid_until``: the token a rotation replaced (NULL: those from
before the first one) and until when it is still accepted (the rotation's grace). Read
with the account on every service-token request (server/auth.py). The SQL is frozen on
purpose.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T01:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts name their current service token and the one it replaced"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)

    async def add_columns():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "ALTER TABLE accounts "
            "ADD COLUMN IF NOT EXISTS service_token_jti uuid NULL, "
            "ADD COLUMN IF NOT EXISTS previous_service_token_jti uuid NULL, "
            "ADD COLUMN IF NOT EXISTS previous_service_token_valid_until timestamptz NULL"
        )

    async def drop_columns():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "ALTER TABLE accounts "
            "DROP COLUMN IF EXISTS previous_service_token_valid_until, "
            "DROP COLUMN IF EXISTS previous_service_token_jti, "
            "DROP COLUMN IF EXISTS service_token_jti"
        )

    manager.add_raw(add_columns)
    manager.add_raw_backwards(drop_columns)

    return manager
