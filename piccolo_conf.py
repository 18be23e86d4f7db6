"""Piccolo's entry point: the engine from DATABASE_URL and our one app.

Piccolo imports this lazily, the first time a query needs an engine, so the CLI can
start the embedded Postgres and export DATABASE_URL before anything touches it.
"""

import os

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

DB = PostgresEngine(
    config={"dsn": os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/baton")},
    # gen_random_uuid() is built in since Postgres 13: no extension to create, which
    # managed Postgres services may forbid.
    extensions=(),
)

APP_REGISTRY = AppRegistry(apps=["tables.piccolo_app"])
