"""Publishing to the live inbox, after commit and only then: the web's side of
``inbox.publish_announcement``.

The change is already committed when this runs, so a Redis failure must not turn a done
hand-off into an error for the caller: it is logged, and the events are published later
by the change's ``announce_events`` outbox row (server.handoffs.jobs), under the same
once-names, so none goes out twice. The whole announcement runs under one request
deadline (server/request_redis.py): a stalled Redis holds the caller
``REQUEST_REDIS_TIMEOUT_S`` at most, however many events the change has.
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio

from inbox.events import Event
from inbox.publish import publish, publish_announcement
from server.request_redis import REDIS_FAILURES, redis_deadline

log = logging.getLogger("baton.handoffs")


async def announce(
    redis_client: redis.asyncio.Redis,
    account_id: uuid.UUID,
    *events: Event,
    announcement_id: uuid.UUID | None = None,
) -> None:
    """Publish ``events``. With the ``announcement_id`` of the change's ``announce_events``
    outbox row, under that announcement's once-names, so the row's job (actors.announce),
    which publishes them when this could not, never repeats one; without, plainly."""
    if not events:
        return
    try:
        async with redis_deadline():
            if announcement_id is None:
                for event in events:
                    await publish(redis_client, account_id, event)
            else:
                await publish_announcement(redis_client, account_id, announcement_id, events)
    except REDIS_FAILURES as exc:  # Redis down, slow or stalled: the committed change stands
        log.warning(
            "could not publish %s to the inbox of account %s (%s)%s",
            _names(events),
            account_id,
            type(exc).__name__,
            _later(announcement_id),
        )
    except Exception:
        log.exception(
            "could not publish %s to the inbox of account %s%s",
            _names(events),
            account_id,
            _later(announcement_id),
        )


def _names(events: tuple[Event, ...]) -> str:
    return ", ".join(type(event).__name__ for event in events)


def _later(announcement_id: uuid.UUID | None) -> str:
    return "; its outbox job will" if announcement_id is not None else ""
