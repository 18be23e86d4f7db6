"""Outbox jobs written by the web, in the transaction of the change behind them.

One statement for all the jobs of a change (a create's actor jobs and its announcement,
a release's announcement): the click path, so SQL (tables/queries/__init__.py). The
commit NOTIFYs the workers' relays (tables/delivery.py), which read the jobs back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

INSERT_JOBS = """
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
SELECT job.id, $1, job.actor_name, job.payload::jsonb, 0, $2
FROM unnest($3::uuid[], $4::text[], $5::text[]) AS job(id, actor_name, payload)
"""


class NewJob(msgspec.Struct, frozen=True, kw_only=True):
    actor_name: str
    payload: str  # JSON
    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)


async def write_jobs(
    conn: asyncpg.Connection, *, account_id: uuid.UUID, jobs: Sequence[NewJob], now: datetime
) -> None:
    if not jobs:
        return
    await conn.execute(
        INSERT_JOBS,
        account_id,
        now,
        [job.id for job in jobs],
        [job.actor_name for job in jobs],
        [job.payload for job in jobs],
    )
