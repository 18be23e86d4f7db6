"""The delivery records of a hand-off: what went where, and how it went."""

from __future__ import annotations

import uuid

from server.handoffs.read import handoff_not_found
from server.schemas.background import DeliveriesOut, DeliveryOut
from tables import db

HANDOFF_EXISTS = "SELECT EXISTS (SELECT 1 FROM session_handoffs WHERE id = $1 AND account_id = $2)"

LIST_DELIVERIES = """
SELECT id, channel, recipient, status, attempts, last_error, sent_at, created_at, updated_at
FROM deliveries
WHERE handoff_id = $1 AND account_id = $2
ORDER BY channel, recipient
"""


async def list_deliveries(account_id: uuid.UUID, handoff_id: uuid.UUID) -> DeliveriesOut:
    async with db.connection() as conn:
        if not await conn.fetchval(HANDOFF_EXISTS, handoff_id, account_id):
            raise handoff_not_found()
        rows = await conn.fetch(LIST_DELIVERIES, handoff_id, account_id)
    return DeliveriesOut(handoff_id=handoff_id, items=[DeliveryOut(**dict(row)) for row in rows])
