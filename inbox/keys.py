"""The inbox's Redis key schema: the one module that names keys and channels.

``baton:inbox:{<account_id>}:stream``   Stream, one entry per event (field ``e`` = the
    event JSON without its id). The entry id IS the event id: ``<ms>-<seq>``, what clients
    pass back as ``since``. Written by ``XADD MAXLEN ~ inbox_history_max_events``.
``baton:inbox:{<account_id>}:trimmed``  String ``"1"``, set the first time MAXLEN dropped
    entries. It lets replay tell "``since`` predates the stream" (nothing lost) from
    "``since`` was trimmed away" (events lost: resync).
``baton:inbox:{<account_id>}:live``     Pub/sub channel carrying each event's frame
    ``{"id", "type", ...}``, published by the same Lua script that XADDs it.
``baton:inbox:*:live``                  The one pattern every hub PSUBSCRIBEs to.
``baton:inbox:{<account_id>}:published:<once-name>``  String: the id of the event
    published under that once-name (``publish(..., once=name)``), kept
    ``ONCE_MARK_TTL_S``. Set by the same script that publishes, so an event asked for
    twice goes out exactly once; deleting it lets the event go out again. The once-names,
    made only by the two functions below (a deploy that renamed them would lose every
    mark and publish again what was already out):

    ``announcement:<announcement id>:<index>`` (``announcement_once_name``)
        The ``index``-th event of a committed change (create, claim, release): the web
        publishes it after the commit, the change's ``announce_events`` outbox row when
        the web could not; whichever comes second publishes nothing.
    ``<event type>:<handoff id>`` (``handoff_event_once_name``)
        An actor's event, once per hand-off (``handoff_assessment_ready``,
        ``handoff_briefing_ready``): a retried or redelivered actor publishes nothing; an
        assessment retry deletes the mark so its result is announced.

The braces are a Redis Cluster hash tag: an account's keys share one slot, so the publish
script may touch all of them.
"""

from __future__ import annotations

_PREFIX = "baton:inbox:{"
_LIVE_SUFFIX = "}:live"

LIVE_PATTERN = "baton:inbox:*:live"
ONCE_MARK_TTL_S = 7 * 24 * 3600


def stream(account_id: object) -> str:
    """The account's event stream (history for ``since`` replay)."""
    return f"{_PREFIX}{account_id}}}:stream"


def trimmed_marker(account_id: object) -> str:
    """Set once the account's stream has lost entries to MAXLEN."""
    return f"{_PREFIX}{account_id}}}:trimmed"


def published_mark(account_id: object, name: str) -> str:
    """Set once the event named ``name`` was published to the account."""
    return f"{_PREFIX}{account_id}}}:published:{name}"


def announcement_once_name(announcement_id: object, index: int) -> str:
    """The once-name of a committed change's ``index``-th event (see the schema above)."""
    return f"announcement:{announcement_id}:{index}"


def handoff_event_once_name(handoff_id: object, event_type: str) -> str:
    """The once-name of an actor's ``event_type`` event for a hand-off (see the schema above)."""
    return f"{event_type}:{handoff_id}"


def handoff_event_mark(account_id: object, handoff_id: object, event_type: str) -> str:
    """The mark of a hand-off's once-only ``event_type`` event: deleting it lets it go out again."""
    return published_mark(account_id, handoff_event_once_name(handoff_id, event_type))


def live_channel(account_id: object) -> str:
    """The account's pub/sub channel."""
    return f"{_PREFIX}{account_id}{_LIVE_SUFFIX}"


def account_of_channel(channel: str | bytes) -> str:
    """The account id inside a live channel name; ValueError for any other channel."""
    name = channel.decode() if isinstance(channel, bytes) else channel
    if not (name.startswith(_PREFIX) and name.endswith(_LIVE_SUFFIX)):
        raise ValueError(f"not an inbox channel: {name!r}")
    account_id = name[len(_PREFIX) : -len(_LIVE_SUFFIX)]
    if not account_id:
        raise ValueError(f"not an inbox channel: {name!r}")
    return account_id
