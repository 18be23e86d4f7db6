"""Hand-off states follow the state machine (tables/states.py): ``resolved``, who holds
what, and which state may follow which.

- ``session_handoffs_state_check`` gains ``resolved`` (SPEC second edition: resolve).
- ``session_handoffs_claimed_by_check``: ``claimed_by`` is set in ``claimed``, NULL in
  ``open`` and ``superseded``, and either in ``resolved`` (resolved by its claimer, or by
  an owner/admin or its creator while open). A value that is no state passes it, so
  that ``session_handoffs_state_check`` refuses it under its own name.
- ``session_handoffs_superseded_check``: only a park is ever superseded.
- The trigger ``session_handoffs_state_transition`` refuses any change of ``state`` the
  machine does not name (a CHECK sees one row version, not the change): SQLSTATE 23514
  (check_violation), constraint name ``session_handoffs_state_transition``. It fires only
  when the state changes. A value that is no state at all it lets through, so that
  ``session_handoffs_state_check`` refuses it under its own name.

The SQL is frozen on purpose: a migration must not change when the machine does (a new
transition is a new migration; tests/tables/test_states.py finds the difference).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "hand-off states follow the state machine"

STATE_AND_HOLDER_CHECKS = """
ALTER TABLE session_handoffs
    DROP CONSTRAINT session_handoffs_state_check,
    ADD CONSTRAINT session_handoffs_state_check
        CHECK ("state" IN ('open', 'claimed', 'superseded', 'resolved')),
    DROP CONSTRAINT session_handoffs_claimed_by_check,
    ADD CONSTRAINT session_handoffs_claimed_by_check
        CHECK (("state" NOT IN ('claimed') OR "claimed_by" IS NOT NULL)
           AND ("state" NOT IN ('open', 'superseded') OR "claimed_by" IS NULL)),
    ADD CONSTRAINT session_handoffs_superseded_check
        CHECK ("state" <> 'superseded' OR "intent" IN ('park'))
"""

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION baton_handoff_state_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.state, NEW.state) IN (
        ('open', 'claimed'), ('claimed', 'open'), ('open', 'superseded'),
        ('open', 'resolved'), ('claimed', 'resolved')
    ) OR NEW.state NOT IN ('open', 'claimed', 'superseded', 'resolved') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a hand-off cannot go from % to %', OLD.state, NEW.state
        USING ERRCODE = 'check_violation', CONSTRAINT = 'session_handoffs_state_transition',
              TABLE = 'session_handoffs', COLUMN = 'state';
END;
$$
"""

CREATE_TRIGGER = """
CREATE TRIGGER session_handoffs_state_transition
BEFORE UPDATE OF state ON session_handoffs
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION baton_handoff_state_transition()
"""

RESTORE_CHECKS = """
ALTER TABLE session_handoffs
    DROP CONSTRAINT IF EXISTS session_handoffs_superseded_check,
    DROP CONSTRAINT session_handoffs_claimed_by_check,
    ADD CONSTRAINT session_handoffs_claimed_by_check
        CHECK (("state" = 'claimed') = ("claimed_by" IS NOT NULL)),
    DROP CONSTRAINT session_handoffs_state_check,
    ADD CONSTRAINT session_handoffs_state_check
        CHECK ("state" IN ('open', 'claimed', 'superseded'))
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)

    async def follow_the_machine():
        engine = engine_finder()
        assert engine is not None
        # One statement per call: asyncpg refuses several in one prepared query.
        await engine.run_ddl(STATE_AND_HOLDER_CHECKS)
        await engine.run_ddl(CREATE_FUNCTION)
        await engine.run_ddl(CREATE_TRIGGER)

    async def forget_the_machine():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP TRIGGER IF EXISTS session_handoffs_state_transition ON session_handoffs")
        await engine.run_ddl("DROP FUNCTION IF EXISTS baton_handoff_state_transition()")
        await engine.run_ddl(RESTORE_CHECKS)

    manager.add_raw(follow_the_machine)
    manager.add_raw_backwards(forget_the_machine)

    return manager
