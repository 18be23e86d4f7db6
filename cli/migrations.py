"""Applying the Piccolo migrations, said in one line.

Piccolo's own report goes to stdout and contradicts itself on an empty database ("4
migrations already complete" above "4 migrations not yet run", under a TABLES banner),
so it is captured: kept for the error message when a migration fails, dropped otherwise.
What ran is read from Piccolo's ``migration`` table before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging

log = logging.getLogger("baton.cli")

APP_NAME = "tables"


async def _applied_names() -> list[str]:
    from piccolo.apps.migrations.tables import Migration

    if not await Migration.table_exists().run():
        return []
    return list(await Migration.get_migrations_which_ran(app_name=APP_NAME))


async def _apply() -> tuple[list[str], list[str]]:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    before = await _applied_names()
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"baton: migrations failed: {result.message}\n{report.getvalue()}")
    after = await _applied_names()
    return before, [name for name in after if name not in before]


def apply_migrations() -> list[str]:
    """Apply what is pending, log one line saying what ran; the names applied now."""
    # Piccolo logs the server version at INFO on every connect.
    logging.getLogger("piccolo").setLevel(max(logging.WARNING, logging.getLogger().level))
    before, applied = asyncio.run(_apply())
    if applied:
        log.info(
            "database migrated: applied %d migration%s (%s)",
            len(applied),
            "" if len(applied) == 1 else "s",
            ", ".join(applied),
        )
    else:
        log.info("database up to date: %d migrations applied earlier, none pending", len(before))
    return applied
