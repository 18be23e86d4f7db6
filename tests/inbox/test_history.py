"""Replay of an account's history after ``since``."""

from __future__ import annotations

import pytest
import redis.asyncio

from inbox import RESYNC, InvalidEventId, decode_frame, last_event_id, publish, replay

from .helpers import created

pytestmark = pytest.mark.asyncio


async def test_replay_after_since_returns_exactly_the_missed_events_in_order(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    ids = [await publish(aredis, account_id, created(n)) for n in range(6)]

    frames = await replay(aredis, account_id, ids[2])

    assert isinstance(frames, list)
    assert [decode_frame(frame)[0] for frame in frames] == ids[3:]
    assert [decode_frame(frame)[1] for frame in frames] == [created(n) for n in range(3, 6)]


async def test_replay_from_the_newest_id_is_empty_and_last_event_id_names_it(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    assert await last_event_id(aredis, account_id) == "0-0"
    ids = [await publish(aredis, account_id, created(n)) for n in range(3)]

    assert await last_event_id(aredis, account_id) == ids[-1]
    assert await replay(aredis, account_id, ids[-1]) == []


async def test_since_zero_replays_a_stream_that_never_lost_anything(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    ids = [await publish(aredis, account_id, created(n)) for n in range(3)]

    frames = await replay(aredis, account_id, "0-0")

    assert isinstance(frames, list)
    assert [decode_frame(frame)[0] for frame in frames] == ids


async def test_a_since_older_than_the_trimmed_stream_asks_for_a_resync(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    # MAXLEN ~ trims whole stream nodes (100 entries each), so a tiny history needs a few
    # hundred events before anything is dropped.
    ids = [await publish(aredis, account_id, created(n), history_max_events=5) for n in range(300)]

    assert await replay(aredis, account_id, ids[0]) is RESYNC
    assert await replay(aredis, account_id, "0-0") is RESYNC
    recent = await replay(aredis, account_id, ids[-3])
    assert isinstance(recent, list)
    assert [decode_frame(frame)[0] for frame in recent] == ids[-2:]


async def test_events_of_another_account_are_never_replayed(
    aredis: redis.asyncio.Redis, account_id: str
) -> None:
    await publish(aredis, "another-account", created(1))
    assert await replay(aredis, account_id, "0-0") == []


@pytest.mark.parametrize(
    "since",
    ["", "abc", "12", "1-2-3", "-1-0", "1-", "1.5-0", " 1-0", "1-0\n", "99999999999999999999-0"],
)
async def test_a_garbage_since_raises_a_clear_error(
    aredis: redis.asyncio.Redis, account_id: str, since: str
) -> None:
    with pytest.raises(InvalidEventId, match="is not an inbox event id") as raised:
        await replay(aredis, account_id, since)
    assert isinstance(raised.value, ValueError)
