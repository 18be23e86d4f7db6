"""Publishing an inbox event: the one path the web and the workers both take.

An event is XADDed to the account's stream and its frame PUBLISHed by one Lua script, so
no event is ever live without history or the other way round; a hub that missed the
PUBLISH (reconnecting) finds the event in the stream. Under a once-name (``inbox/keys.py``
says which names there are) the same script first checks and then sets the event's
once-mark, so an event asked for twice goes out once, whoever asks second:

- ``publish_announcement``: a committed change's events (create, claim, release). The web
  calls it right after the commit (``server/handoffs/announce.py``, within its request
  deadline); the change's ``announce_events`` outbox row calls it again from the workers'
  relay (``actors/announce.py``), a no-op unless the web could not.
- ``publish_once_per_handoff``: an actor's event (``actors/events.py``), at most once per
  hand-off whatever retries or redeliveries run it again.
- ``publish`` / ``publish_sync``: one event, once-name optional (tests, benchmarks).

The callers bring their own Redis client (the web's bounded one, a worker's); nothing
here retries or swallows an error: the caller decides what a failure means.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from settings import get_settings

from . import keys
from .events import Event, encode_event, event_type

# KEYS[1] stream, KEYS[2] trimmed marker
# ARGV[1] live channel, ARGV[2] history max events, ARGV[3] event JSON (an object, no id)
# XLEN before and after tells whether MAXLEN ~ dropped entries (it trims whole macro
# nodes, so rarely); replay needs to know that history was lost.
PUBLISH_SCRIPT = """
local before = redis.call('XLEN', KEYS[1])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3])
if redis.call('XLEN', KEYS[1]) <= before then
  redis.call('SET', KEYS[2], '1')
end
redis.call('PUBLISH', ARGV[1], '{"id":"' .. id .. '",' .. string.sub(ARGV[3], 2))
return id
"""


# As PUBLISH_SCRIPT, but KEYS[3] marks the event as published: when it is already set,
# nothing is published and the id it holds is returned. ARGV[4]: the mark's TTL (s).
PUBLISH_ONCE_SCRIPT = """
local done = redis.call('GET', KEYS[3])
if done then
  return done
end
local before = redis.call('XLEN', KEYS[1])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3])
if redis.call('XLEN', KEYS[1]) <= before then
  redis.call('SET', KEYS[2], '1')
end
redis.call('PUBLISH', ARGV[1], '{"id":"' .. id .. '",' .. string.sub(ARGV[3], 2))
redis.call('SET', KEYS[3], id, 'EX', ARGV[4])
return id
"""


def _script_input(
    account_id: object, event: Event, history_max_events: int | None
) -> tuple[list[str], list[str | int | bytes]]:
    if history_max_events is None:
        history_max_events = get_settings().inbox_history_max_events
    if history_max_events < 1:
        raise ValueError(f"history_max_events must be at least 1, not {history_max_events}")
    script_keys = [keys.stream(account_id), keys.trimmed_marker(account_id)]
    args: list[str | int | bytes] = [
        keys.live_channel(account_id),
        history_max_events,
        encode_event(event),
    ]
    return script_keys, args


def _as_str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def publish(
    redis_client: redis.asyncio.Redis,
    account_id: object,
    event: Event,
    *,
    history_max_events: int | None = None,
    once: str | None = None,
) -> str:
    """Record and broadcast ``event`` to ``account_id``'s inboxes; returns its event id.

    ``history_max_events`` defaults to ``settings.inbox_history_max_events``. With
    ``once``, a name for this event: a second publish under the same name publishes
    nothing and returns the first one's id.
    """
    script_keys, args = _script_input(account_id, event, history_max_events)
    source = PUBLISH_SCRIPT
    if once is not None:
        script_keys.append(keys.published_mark(account_id, once))
        args.append(keys.ONCE_MARK_TTL_S)
        source = PUBLISH_ONCE_SCRIPT
    script = redis_client.register_script(source)  # EVALSHA, EVAL on NOSCRIPT
    return _as_str(await script(keys=script_keys, args=args))


def publish_sync(
    redis_client: redis.Redis,
    account_id: object,
    event: Event,
    *,
    history_max_events: int | None = None,
) -> str:
    """``publish`` for synchronous callers (same script, same wire)."""
    script_keys, args = _script_input(account_id, event, history_max_events)
    script = redis_client.register_script(PUBLISH_SCRIPT)
    return _as_str(script(keys=script_keys, args=args))


async def publish_announcement(
    redis_client: redis.asyncio.Redis,
    account_id: object,
    announcement_id: object,
    events: Sequence[Event],
) -> list[str]:
    """Publish a committed change's ``events`` in order, each under its once-name; their
    event ids (the first publish's, for those already out). Raises at the first failure:
    the rest is left to whoever publishes the announcement next."""
    return [
        await publish(
            redis_client, account_id, event, once=keys.announcement_once_name(announcement_id, index)
        )
        for index, event in enumerate(events)
    ]


async def publish_once_per_handoff(
    redis_client: redis.asyncio.Redis, account_id: object, handoff_id: object, event: Event
) -> str:
    """Publish ``event`` unless this hand-off's event of its type is already out; its event id."""
    once = keys.handoff_event_once_name(handoff_id, event_type(event))
    return await publish(redis_client, account_id, event, once=once)
