"""The workers' side of the inbox: their Redis client, and the actors' events, each at most
once per hand-off.

``publish_once`` goes through ``inbox.publish_once_per_handoff``: the event and its
once-mark are written by one script, so a retried or redelivered actor, or one killed
right after publishing, never announces twice. The once-names and keys are the inbox's
(``inbox/keys.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref

import redis.asyncio

from inbox import Event, event_type, keys, publish_once_per_handoff
from settings import get_settings

log = logging.getLogger("baton.actors")

REDIS_SOCKET_TIMEOUT_S = 5.0

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)


def redis_client() -> redis.asyncio.Redis:
    """One async Redis client per event loop (a client is bound to the loop that made it)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        url = get_settings().redis_url
        if not url:
            raise RuntimeError("REDIS_URL is not set")
        client = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S, socket_timeout=REDIS_SOCKET_TIMEOUT_S
        )
        _clients[loop] = client
    return client


async def publish_once(account_id: uuid.UUID, handoff_id: uuid.UUID, event: Event) -> str:
    """Publish ``event`` unless it was already published for this hand-off; its event id.

    Raises when Redis is unreachable, so the actor's message is retried.
    """
    event_id = await publish_once_per_handoff(redis_client(), account_id, handoff_id, event)
    log.info("published %s for hand-off %s (or it was already)", event_type(event), handoff_id)
    return event_id


def published_mark_key(account_id: object, handoff_id: object, event_type: str) -> str:
    """The Redis key marking that event as published: deleting it lets it go out again."""
    return keys.handoff_event_mark(account_id, handoff_id, event_type)
