"""``announce_events``: the inbox events of a committed change, when the web could not.

The web publishes a create's events right after its commit; the same transaction wrote
an ``announce_events`` outbox row holding them (``server.handoffs.jobs``). This actor
publishes each under the same once-name the web used (``once_name``), so an event goes
out exactly once whoever gets there: usually the web did, and this finds nothing to do;
with Redis restarting at that moment, or the web process killed right after its commit,
this is what puts ``handoff_created`` into every inbox.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import msgspec

from actors.broker import broker
from actors.events import redis_client
from inbox import decode_event, publish

log = logging.getLogger("baton.actors.announce")


def once_name(announcement_id: object, index: int) -> str:
    """The once-name of an announcement's ``index``-th event (``inbox.publish(once=…)``)."""
    return f"announcement:{announcement_id}:{index}"


@dramatiq.actor(broker=broker, queue_name="notify", max_retries=20, min_backoff=500, max_backoff=30_000)
async def announce_events(account_id: str, announcement_id: str, events: list[dict[str, Any]]) -> None:
    client = redis_client()
    for index, fields in enumerate(events):
        event = decode_event(msgspec.json.encode(fields))
        await publish(client, account_id, event, once=once_name(announcement_id, index))
    log.debug("announcement %s: %d event(s) in the inbox", announcement_id, len(events))
