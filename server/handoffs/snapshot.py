"""The snapshot: what the session looked like at the moment it was handed off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

BRANCH_MAP = """
SELECT id, label, status, status_reason, parent_branch_id
FROM session_branches
WHERE session_id = $1
ORDER BY branch_order, id
"""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def build_snapshot(conn: asyncpg.Connection, session: Mapping[str, Any]) -> dict[str, Any]:
    """SPEC "Creating a hand-off": the session's fields before the change, and for a
    branching session its branch map by ``branch_order`` and its active branch."""
    snapshot: dict[str, Any] = {
        "problem_summary": session["problem_summary"],
        "problem_domain": session["problem_domain"],
        "status": session["status"],
        "step_count": session["step_count"],
        "confidence_tier": session["confidence_tier"],
    }
    if session["is_branching"]:
        branches = await conn.fetch(BRANCH_MAP, session["id"])
        snapshot["branch_map"] = [
            {
                "id": str(branch["id"]),
                "label": branch["label"],
                "status": branch["status"],
                "status_reason": branch["status_reason"],
                "parent_branch_id": _text(branch["parent_branch_id"]),
            }
            for branch in branches
        ]
        snapshot["active_branch_id"] = _text(session["active_branch_id"])
    return snapshot
