"""Piccolo's entry point: the engine from DATABASE_URL and our one app.

Piccolo imports this lazily, the first time a query needs an engine, so the CLI can
start the embedded Postgres and export DATABASE_URL before anything touches it.
"""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from settings import get_settings

_database_url = get_settings().database_url
if not _database_url:
    raise RuntimeError(
        "DATABASE_URL is not set. Run Baton through the `baton` command (it starts an "
        "embedded Postgres), or set DATABASE_URL=postgresql://user@host:port/db."
    )

DB = PostgresEngine(
    config={"dsn": _database_url},
    # gen_random_uuid() is built in since Postgres 13: no extension to create, which
    # managed Postgres services may forbid.
    extensions=(),
)

APP_REGISTRY = AppRegistry(apps=["tables.piccolo_app"])
