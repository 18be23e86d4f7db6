"""Publishing to the live inbox, after commit and only then.

The change is already committed when this runs, so a Redis failure must not turn a done
hand-off into an error for the caller: it is logged, and inboxes catch up by refetching
the queue (the card is in the database either way).
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio

from inbox.events import Event
from inbox.publish import publish

log = logging.getLogger("baton.handoffs")


async def announce(redis_client: redis.asyncio.Redis, account_id: uuid.UUID, *events: Event) -> None:
    for event in events:
        try:
            await publish(redis_client, account_id, event)
        except Exception:  # Redis down or slow: the committed change stands
            log.exception("could not publish %s to the inbox of account %s", type(event).__name__, account_id)
