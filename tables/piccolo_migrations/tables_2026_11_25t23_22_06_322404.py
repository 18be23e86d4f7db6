"""Indexes Piccolo cannot declare: partial, DESC-ordered, multi-column.

Plain CREATE INDEX (not CONCURRENTLY): Piccolo runs each migration in a transaction, and
these tables are created one migration earlier, so they are empty or small here.
The SQL is frozen on purpose: a migration must not change when the tables do.
"""

from typing import NamedTuple

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T23:22:06:322404"
VERSION = "1.38.0"
DESCRIPTION = "indexes piccolo cannot declare"


class Index(NamedTuple):
    name: str
    definition: str  # everything after "CREATE [UNIQUE] INDEX name"
    unique: bool = False

    @property
    def create(self) -> str:
        unique = "UNIQUE " if self.unique else ""
        return f"CREATE {unique}INDEX {self.name} {self.definition}"


INDEXES = [
    # A session has at most one open hand-off: a racing second create gets a unique
    # violation (-> 409 with open_handoff_id) instead of a duplicate card.
    Index(
        "session_handoffs_one_open_per_session",
        "ON session_handoffs (session_id) WHERE state = 'open'",
        unique=True,
    ),
    # GET /queue without a team: newest first, keyset on (created_at, id).
    Index(
        "session_handoffs_open_queue",
        "ON session_handoffs (account_id, created_at DESC, id DESC) WHERE state = 'open'",
    ),
    # GET /queue?team_id=: team_id is copied from the session, so no join is needed.
    Index(
        "session_handoffs_open_team_queue",
        (
            "ON session_handoffs (account_id, team_id, created_at DESC, id DESC) "
            "WHERE state = 'open'"
        ),
    ),
    # An Idempotency-Key is scoped to its account: two tenants may pick the same key.
    Index(
        "session_handoffs_idempotency_key",
        (
            "ON session_handoffs (account_id, idempotency_key) "
            "WHERE idempotency_key IS NOT NULL"
        ),
        unique=True,
    ),
    # The reminder sweep: open escalations not yet reminded, oldest first.
    Index(
        "session_handoffs_awaiting_reminder",
        (
            "ON session_handoffs (created_at) "
            "WHERE state = 'open' AND intent = 'escalate' AND reminded_at IS NULL"
        ),
    ),
    # The outbox relay reads only unsent jobs, oldest first; sent ones drop out.
    Index("outbox_unsent", "ON outbox (created_at) WHERE sent_at IS NULL"),
    # A sweeper finds deliveries a killed worker left pending or mid-send.
    Index(
        "deliveries_unfinished",
        "ON deliveries (updated_at) WHERE status IN ('pending', 'sending')",
    ),
    # The bell: a user's notifications, newest first, keyset on (created_at, id).
    Index(
        "app_notifications_user_recent",
        "ON app_notifications (user_id, created_at DESC, id DESC)",
    ),
    # The bell's unread badge.
    Index(
        "app_notifications_user_unread",
        "ON app_notifications (user_id) WHERE read_at IS NULL",
    ),
    # A retried actor never rings the same bell twice for one hand-off.
    Index(
        "app_notifications_one_per_handoff_user_kind",
        (
            "ON app_notifications (handoff_id, user_id, kind) "
            "WHERE handoff_id IS NOT NULL"
        ),
        unique=True,
    ),
    # Steps and branches are always read per session, in order.
    Index("session_steps_session_order", "ON session_steps (session_id, step_order)"),
    Index(
        "session_branches_session_order",
        "ON session_branches (session_id, branch_order)",
    ),
]


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tables", description=DESCRIPTION
    )

    async def create_indexes():
        engine = engine_finder()
        assert engine is not None
        # One statement per call: asyncpg refuses several in one prepared query.
        for index in INDEXES:
            await engine.run_ddl(index.create)

    async def drop_indexes():
        engine = engine_finder()
        assert engine is not None
        for index in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {index.name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)

    return manager
