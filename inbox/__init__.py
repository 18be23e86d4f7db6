"""The live inbox: publish hand-off events, fan them out to every replica's websockets
through Redis, replay what a reconnecting client missed. Imports nothing of ours but
settings."""

from .events import (
    Event,
    HandoffAssessmentReady,
    HandoffBriefingReady,
    HandoffClaimed,
    HandoffCreated,
    HandoffReleased,
    HandoffSuperseded,
    decode_event,
    encode_event,
    event_type,
)
from .frames import RESYNC_FRAME, decode_frame, frame_id
from .history import RESYNC, Resync, last_event_id, replay
from .hub import Hub, HubNotStarted, HubStats
from .ids import ZERO_ID, InvalidEventId, parse_event_id
from .publish import publish, publish_announcement, publish_once_per_handoff, publish_sync
from .subscriber import CLIENT_BUFFER_EVENTS, Subscriber, SubscriberDropped

__all__ = [
    "CLIENT_BUFFER_EVENTS",
    "RESYNC",
    "RESYNC_FRAME",
    "ZERO_ID",
    "Event",
    "HandoffAssessmentReady",
    "HandoffBriefingReady",
    "HandoffClaimed",
    "HandoffCreated",
    "HandoffReleased",
    "HandoffSuperseded",
    "Hub",
    "HubNotStarted",
    "HubStats",
    "InvalidEventId",
    "Resync",
    "Subscriber",
    "SubscriberDropped",
    "decode_event",
    "decode_frame",
    "encode_event",
    "event_type",
    "frame_id",
    "last_event_id",
    "parse_event_id",
    "publish",
    "publish_announcement",
    "publish_once_per_handoff",
    "publish_sync",
    "replay",
]
