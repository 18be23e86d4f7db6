"""Publishing to the live inbox, after commit and only then.

The change is already committed when this runs, so a Redis failure must not turn a done
hand-off into an error for the caller: it is logged, and a create's events are published
later by its ``announce_events`` outbox job (server.handoffs.jobs). A stalled Redis
holds the caller ``REQUEST_REDIS_TIMEOUT_S`` at most (server/request_redis.py).
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio

from inbox.events import Event
from inbox.publish import publish
from server.request_redis import REDIS_FAILURES, redis_deadline

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
            async with redis_deadline():
                await publish(redis_client, account_id, event, once=once)
        except REDIS_FAILURES as exc:  # Redis down, slow or stalled: the committed change stands
            later = "; its outbox job will" if announcement_id else ""
            what = type(event).__name__
            log.warning(
                "could not publish %s to the inbox of account %s (%s)%s",
                what,
                account_id,
                type(exc).__name__,
                later,
            )
            if announcement_id is not None:
                # The rest of the announcement too: Redis is as unreachable for them, and
                # waiting for each would hold the caller another deadline per event.
                return
        except Exception:
            later = "; its outbox job will" if announcement_id else ""
            log.exception(
                "could not publish %s to the inbox of account %s%s", type(event).__name__, account_id, later
            )
