"""``publish(..., once=name)``: an event asked for twice under one name goes out once."""

from __future__ import annotations

import redis.asyncio

from inbox import HandoffCreated, publish, replay


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
