"""The delivery records of a hand-off: what went where, and how it went."""

from __future__ import annotations

import uuid

import msgspec

from server.handoffs.read import handoff_not_found
from server.schemas.background import DeliveriesOut, DeliveryOut
from tables.queries import handoffs
from tables.queries.deliveries import list_for_handoff


async def list_deliveries(account_id: uuid.UUID, handoff_id: uuid.UUID) -> DeliveriesOut:
    if not await handoffs.exists(account_id=account_id, handoff_id=handoff_id):
        raise handoff_not_found()
    rows = await list_for_handoff(account_id=account_id, handoff_id=handoff_id)
    return DeliveriesOut(
        handoff_id=handoff_id, items=[DeliveryOut(**msgspec.structs.asdict(row)) for row in rows]
    )
