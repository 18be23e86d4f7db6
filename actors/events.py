"""Inbox events from the actors, published on the worker's loop, each at most once per hand-off.

Redis keys owned here:
    baton:published:{handoff_id}:{event type}   "1", kept PUBLISHED_MARK_TTL_S, set after the
        event was published, so a retried or redelivered actor does not announce twice.
        A crash between the publish and the mark repeats the event: harmless, a client
        just refreshes the card once more.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref

import redis.asyncio

from inbox import Event, publish
from settings import get_settings

log = logging.getLogger("baton.actors")

PUBLISHED_MARK_KEY = "baton:published:{handoff_id}:{event_type}"
PUBLISHED_MARK_TTL_S = 7 * 24 * 3600
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


async def publish_once(account_id: uuid.UUID, handoff_id: uuid.UUID, event: Event) -> bool:
    """Publish ``event`` unless it was already published for this hand-off; True if it was now.

    Raises when Redis is unreachable, so the actor's message is retried.
    """
    client = redis_client()
    event_type = type(event).__struct_config__.tag
    mark = PUBLISHED_MARK_KEY.format(handoff_id=handoff_id, event_type=event_type)
    if await client.exists(mark):
        return False
    await publish(client, account_id, event)
    await client.set(mark, "1", ex=PUBLISHED_MARK_TTL_S)
    log.info("published %s for hand-off %s", event_type, handoff_id)
    return True
