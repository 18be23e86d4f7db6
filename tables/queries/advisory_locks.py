"""Postgres advisory locks: one worker at a time for work every worker may start."""

from __future__ import annotations

from tables import db
from tables.delivery import Outbox

# Raw: Piccolo's builder has no expression for a function call outside a column, and an
# advisory lock touches no table (run through ``Outbox.raw`` only to reach the engine).
TRY_TRANSACTION_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext({})) AS taken"


async def try_transaction_lock(*, name: str) -> bool:
    """Take the transaction-level lock ``name`` if nobody holds it; held until the
    current ``tables.db.transaction()`` ends. Call it inside one."""
    rows = await db.run(Outbox.raw(TRY_TRANSACTION_LOCK, name))
    return bool(rows[0]["taken"])
