"""Small helpers shared by the inbox tests."""

from __future__ import annotations

import asyncio
import uuid

from inbox import HandoffCreated, Subscriber, decode_frame

FRAME_TIMEOUT_S = 10.0


def created(n: int = 0) -> HandoffCreated:
    """A handoff_created event numbered ``n`` (its handoff_id), to tell events apart."""
    return HandoffCreated(
        handoff_id=str(uuid.UUID(int=n)),
        session_id=str(uuid.UUID(int=1_000_000 + n)),
        intent="escalate",
        priority="high",
        engineer_notes=f"printer on fire #{n}",
        problem_summary="Printer offline",
        created_at="2025-06-01T12:00:00+00:00",
    )


async def next_frame(sub: Subscriber, timeout_s: float = FRAME_TIMEOUT_S) -> bytes:
    return await asyncio.wait_for(sub.next_frame(), timeout_s)


async def next_ids(sub: Subscriber, count: int, timeout_s: float = FRAME_TIMEOUT_S) -> list[str]:
    """The ids of the subscriber's next ``count`` event frames."""
    return [decode_frame(await next_frame(sub, timeout_s))[0] for _ in range(count)]
