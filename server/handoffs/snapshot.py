"""The snapshot: what the session looked like at the moment it was handed off."""

from __future__ import annotations

from typing import Any

import asyncpg

from tables.queries import handoff_create
from tables.queries.handoff_create import LockedSession


async def build_snapshot(conn: asyncpg.Connection, session: LockedSession) -> dict[str, Any]:
    """SPEC "Creating a hand-off": the session's fields before the change, and for a
    branching session its branch map by ``branch_order`` and its active branch."""
    snapshot: dict[str, Any] = {
        "problem_summary": session.problem_summary,
        "problem_domain": session.problem_domain,
        "status": session.status,
        "step_count": session.step_count,
        "confidence_tier": session.confidence_tier,
    }
    if session.is_branching:
        branches = await handoff_create.branch_map(conn, session_id=session.id)
        snapshot["branch_map"] = [
            {
                "id": str(branch.id),
                "label": branch.label,
                "status": branch.status,
                "status_reason": branch.status_reason,
                "parent_branch_id": None if branch.parent_branch_id is None else str(branch.parent_branch_id),
            }
            for branch in branches
        ]
        snapshot["active_branch_id"] = (
            None if session.active_branch_id is None else str(session.active_branch_id)
        )
    return snapshot
