"""Once-names: an event asked for twice under one name goes out once (``inbox/publish.py``,
names from ``inbox/keys.py``)."""

from __future__ import annotations

import uuid

import redis.asyncio

from inbox import (
    HandoffAssessmentReady,
    HandoffBriefingReady,
    HandoffCreated,
    decode_frame,
    keys,
    publish,
    publish_announcement,
    publish_once_per_handoff,
    replay,
)


def created(n: int) -> HandoffCreated:
    return HandoffCreated(
        handoff_id=f"h{n}",
        session_id="s",
        intent="escalate",
        priority="high",
        engineer_notes=None,
        problem_summary=None,
        created_at="2026-11-25T12:00:00+00:00",
    )


async def test_a_second_publish_under_the_same_name_publishes_nothing_and_answers_the_first_id(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    first = await publish(aredis, account_id, created(1), once="announcement:a:0")
    again = await publish(aredis, account_id, created(1), once="announcement:a:0")
    other = await publish(aredis, account_id, created(2), once="announcement:b:0")
    plain = await publish(aredis, account_id, created(2))

    assert again == first
    frames = await replay(aredis, account_id, "0-0")
    assert isinstance(frames, list)
    assert len(frames) == 3 and len({first, other, plain}) == 3


async def test_the_same_name_in_another_account_is_another_event(aredis: redis.asyncio.Redis) -> None:
    await publish(aredis, "account-one", created(1), once="announcement:a:0")
    await publish(aredis, "account-two", created(1), once="announcement:a:0")
    for account in ("account-one", "account-two"):
        frames = await replay(aredis, account, "0-0")
        assert isinstance(frames, list) and len(frames) == 1


async def test_an_announcement_published_again_adds_only_the_events_the_first_attempt_missed(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    # The web got the first event out before Redis failed; the outbox row then publishes all.
    announcement_id = uuid.uuid4()
    [web_first] = await publish_announcement(aredis, account_id, announcement_id, [created(1)])
    relayed = await publish_announcement(aredis, account_id, announcement_id, [created(1), created(2)])

    assert relayed[0] == web_first
    frames = await replay(aredis, account_id, "0-0")
    assert isinstance(frames, list)
    assert [decode_frame(frame)[0] for frame in frames] == relayed


async def test_an_actors_event_goes_out_once_per_handoff_until_its_mark_is_deleted(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    handoff_id = uuid.uuid4()
    ready = HandoffAssessmentReady(handoff_id=str(handoff_id), session_id="s", has_assessment=True)
    first = await publish_once_per_handoff(aredis, account_id, handoff_id, ready)
    redelivered = await publish_once_per_handoff(aredis, account_id, handoff_id, ready)
    other_handoff = await publish_once_per_handoff(aredis, account_id, uuid.uuid4(), ready)
    await aredis.delete(keys.handoff_event_mark(account_id, handoff_id, "handoff_assessment_ready"))
    retried = await publish_once_per_handoff(aredis, account_id, handoff_id, ready)

    assert redelivered == first
    assert len({first, other_handoff, retried}) == 3
    frames = await replay(aredis, account_id, "0-0")
    assert isinstance(frames, list) and len(frames) == 3


async def test_once_marks_written_under_the_deployed_key_names_still_hold(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    # Marks a running deployment wrote (docs/operations.md, "Redis keys"): a rename of the
    # key schema would lose them, and a deploy would announce everything a second time.
    announcement_id, handoff_id = uuid.uuid4(), uuid.uuid4()
    mark = f"baton:inbox:{{{account_id}}}:published:"
    await aredis.set(f"{mark}announcement:{announcement_id}:0", "1-1")
    await aredis.set(f"{mark}handoff_briefing_ready:{handoff_id}", "1-2")

    announced = await publish_announcement(aredis, account_id, announcement_id, [created(1)])
    briefed = await publish_once_per_handoff(
        aredis, account_id, handoff_id, HandoffBriefingReady(handoff_id=str(handoff_id), session_id="s")
    )

    assert (announced, briefed) == (["1-1"], "1-2")
    assert await replay(aredis, account_id, "0-0") == []
