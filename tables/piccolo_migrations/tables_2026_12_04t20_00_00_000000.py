"""Acting from anywhere (SPEC second edition): Slack users and Slack signing secrets.

- ``users.slack_user_id``: the Slack member id of a Baton user (``PUT /users``), unique
  within an account, so a Pick up pressed in Slack maps to one person.
- ``notification_channels.signing_secret``: the Slack app's signing secret that verifies
  the channel's interaction requests (write-only on ``PUT /channels``).

The SQL is frozen on purpose.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T20:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "users.slack_user_id and notification_channels.signing_secret"

FORWARDS = (
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS slack_user_id varchar(32) NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS users_slack_user_id_per_account ON users (account_id, slack_user_id) "
    "WHERE slack_user_id IS NOT NULL",
    "ALTER TABLE notification_channels ADD COLUMN IF NOT EXISTS signing_secret text NULL",
)
BACKWARDS = (
    "ALTER TABLE notification_channels DROP COLUMN IF EXISTS signing_secret",
    "DROP INDEX IF EXISTS users_slack_user_id_per_account",
    "ALTER TABLE users DROP COLUMN IF EXISTS slack_user_id",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)

    async def run(statements: tuple[str, ...]) -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in statements:
            await engine.run_ddl(statement)

    async def add():
        await run(FORWARDS)

    async def drop():
        await run(BACKWARDS)

    manager.add_raw(add)
    manager.add_raw_backwards(drop)
    return manager
