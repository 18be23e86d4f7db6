"""The wire shape of inbox events."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest
import redis
import redis.asyncio

from inbox import (
    Event,
    HandoffAssessmentReady,
    HandoffBriefingReady,
    HandoffClaimed,
    HandoffReleased,
    HandoffSuperseded,
    decode_frame,
    parse_event_id,
    publish,
    publish_sync,
    replay,
)

from .helpers import created

SPEC_FIELDS = {
    "handoff_created": [
        "handoff_id",
        "session_id",
        "intent",
        "priority",
        "engineer_notes",
        "problem_summary",
        "created_at",
    ],
    "handoff_assessment_ready": ["handoff_id", "session_id", "has_assessment"],
    "handoff_claimed": ["handoff_id", "session_id", "claimed_by_id", "claimed_by_name", "claimed_at"],
    "handoff_released": ["handoff_id", "session_id"],
    "handoff_superseded": ["handoff_id", "session_id", "superseded_by"],
    "handoff_briefing_ready": ["handoff_id", "session_id"],
}

ONE_OF_EACH: list[Event] = [
    created(1),
    HandoffAssessmentReady(handoff_id="h", session_id="s", has_assessment=True),
    HandoffClaimed(
        handoff_id="h",
        session_id="s",
        claimed_by_id=str(uuid.uuid4()),
        claimed_by_name="Dana Senior",
        claimed_at="2025-06-01T12:01:00+00:00",
    ),
    HandoffReleased(handoff_id="h", session_id="s"),
    HandoffSuperseded(handoff_id="h", session_id="s", superseded_by="h2"),
    HandoffBriefingReady(handoff_id="h", session_id="s"),
]


def test_each_event_type_has_exactly_the_fields_spec_gives_it() -> None:
    found = {
        event.__struct_config__.tag: [f.name for f in msgspec.structs.fields(event)] for event in ONE_OF_EACH
    }
    assert found == SPEC_FIELDS


@pytest.mark.asyncio
async def test_publish_sync_and_publish_produce_the_same_wire_shape_with_increasing_ids(
    aredis: redis.asyncio.Redis, sync_redis: redis.Redis, account_id: str
) -> None:
    ids = []
    for event in ONE_OF_EACH:
        ids.append(await publish(aredis, account_id, event))
        ids.append(publish_sync(sync_redis, account_id, event))

    frames = await replay(aredis, account_id, "0-0")
    assert isinstance(frames, list)
    wire = [json.loads(frame) for frame in frames]

    assert [message["id"] for message in wire] == ids
    assert [parse_event_id(i) for i in ids] == sorted(parse_event_id(i) for i in set(ids))
    for pos, event in enumerate(ONE_OF_EACH):
        from_async, from_sync = wire[2 * pos], wire[2 * pos + 1]
        assert list(from_async) == ["id", "type", *SPEC_FIELDS[from_async["type"]]]
        assert {**from_async, "id": None} == {**from_sync, "id": None}
        assert from_async == {"id": ids[2 * pos], **json.loads(msgspec.json.encode(event))}
        assert decode_frame(frames[2 * pos]) == (ids[2 * pos], event)


@pytest.mark.asyncio
async def test_an_event_with_a_value_spec_does_not_allow_is_refused_when_decoded() -> None:
    frame = b'{"id":"1-0","type":"handoff_created","handoff_id":"h","session_id":"s",'
    frame += b'"intent":"vacation","priority":"high","engineer_notes":null,'
    frame += b'"problem_summary":null,"created_at":"2025-06-01T12:00:00+00:00"}'
    with pytest.raises(msgspec.ValidationError, match="intent"):
        decode_frame(frame)
