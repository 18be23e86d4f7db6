"""``announce_events``: the inbox events of a committed change, when the web could not.

The web publishes a change's events (create, claim, release) right after its commit; the
same transaction wrote an ``announce_events`` outbox row holding them
(``server.handoffs.jobs``, ``server.handoffs.claim``). The outbox relay publishes them
again through the same ``inbox.publish_announcement``, under the same once-names, so an
event goes out exactly once whoever gets there: usually the web did, and this finds
nothing to do; with Redis restarting at that moment, or the web process killed right
after its commit, this is what puts the event into every inbox. The relay does it
itself, in commit order, rather than through Dramatiq, whose messages run in any order:
a claim and its release made while Redis was down must reach the inbox as claimed, then
released.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import msgspec

import inbox
from actors.broker import broker
from actors.events import redis_client

log = logging.getLogger("baton.actors.announce")


async def publish_announcement(account_id: str, announcement_id: str, events: list[dict[str, Any]]) -> None:
    """An ``announce_events`` row's payload published: a no-op for the events the web
    already published. Raises when Redis cannot be reached."""
    decoded = [inbox.decode_event(msgspec.json.encode(fields)) for fields in events]
    await inbox.publish_announcement(redis_client(), account_id, announcement_id, decoded)
    log.debug("announcement %s: %d event(s) in the inbox", announcement_id, len(events))


# The outbox relay publishes announcements itself, in commit order (actors/outbox.py); the
# actor stays for messages an earlier version queued, and for anyone sending one by hand.
@dramatiq.actor(broker=broker, queue_name="notify", max_retries=20, min_backoff=500, max_backoff=30_000)
async def announce_events(account_id: str, announcement_id: str, events: list[dict[str, Any]]) -> None:
    await publish_announcement(account_id, announcement_id, events)
