"""Publishing to the live inbox, after commit and only then.

The change is already committed when this runs, so a Redis failure must not turn a done
hand-off into an error for the caller: it is logged, and a create's events are published
later by its ``announce_events`` outbox job (server.handoffs.jobs).
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio

from inbox.events import Event
from inbox.publish import publish

log = logging.getLogger("baton.handoffs")


async def announce(
    redis_client: redis.asyncio.Redis,
    account_id: uuid.UUID,
    *events: Event,
    announcement_id: uuid.UUID | None = None,
) -> None:
    """Publish ``events``. With the ``announcement_id`` of an ``announce_events`` outbox
    row (server.handoffs.jobs), each is published under its once-name, so that row's job
    (actors.announce), which publishes them when this did not, never repeats one."""
    from actors.announce import once_name  # here: actors bind to REDIS_URL when imported

    for index, event in enumerate(events):
        once = None if announcement_id is None else once_name(announcement_id, index)
        try:
            await publish(redis_client, account_id, event, once=once)
        except Exception:  # Redis down or slow: the committed change stands
            later = "; its outbox job will" if announcement_id else ""
            what = type(event).__name__
            log.exception("could not publish %s to the inbox of account %s%s", what, account_id, later)
