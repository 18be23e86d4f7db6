"""Outcomes (SPEC second edition: ``POST /handoffs/{id}/resolve``): how a hand-off ended.

``session_handoffs`` gains the resolution, all NULL until the hand-off is resolved:
``resolution_outcome`` (``resolved`` | ``returned`` | ``withdrawn``), the resolver's
``resolution_note``, ``resolved_by`` (NO ACTION, as ``claimed_by``: a user who resolved
hand-offs is soft-deleted, never hard-deleted) and ``resolved_at``.

The SQL is frozen on purpose.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "hand-off outcomes: resolution_outcome, resolution_note, resolved_by, resolved_at"

FORWARDS = (
    """
ALTER TABLE session_handoffs
    ADD COLUMN IF NOT EXISTS resolution_outcome varchar(16) NULL,
    ADD COLUMN IF NOT EXISTS resolution_note text NULL,
    ADD COLUMN IF NOT EXISTS resolved_by uuid NULL REFERENCES users (id),
    ADD COLUMN IF NOT EXISTS resolved_at timestamptz NULL,
    ADD CONSTRAINT session_handoffs_resolution_outcome_check
        CHECK ("resolution_outcome" IN ('resolved', 'returned', 'withdrawn'))
""",
)

BACKWARDS = (
    """
ALTER TABLE session_handoffs
    DROP CONSTRAINT IF EXISTS session_handoffs_resolution_outcome_check,
    DROP COLUMN IF EXISTS resolved_at,
    DROP COLUMN IF EXISTS resolved_by,
    DROP COLUMN IF EXISTS resolution_note,
    DROP COLUMN IF EXISTS resolution_outcome
""",
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
