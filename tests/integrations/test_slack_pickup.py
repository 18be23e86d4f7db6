"""Pick up from Slack (SPEC second edition, "Acting from anywhere"): the button in the
message, Slack's signed interaction requests, and the answers through ``response_url``.

Everything runs against real ``baton serve`` (and, for the message, ``baton worker``)
processes on the session's Postgres and Redis. Slack is played by local fakes speaking
its protocol (tests/fakes/chat.py): the incoming webhook that receives the message, the
interaction request signed with the channel's signing secret as Slack signs it, and the
``response_url`` that takes Baton's answer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from tests.actors.conftest import DIAGNOSTIC_SESSION, eventually, put_policy, settled, tier, worker_env
from tests.api.conftest import API, Person, Tenant, assert_problem, database_fingerprint, new_tenant
from tests.conftest import BatonProcess, BatonProcesses, wait_for
from tests.fakes.chat import (
    FakeResponseUrls,
    FakeWebhooks,
    block_actions_payload,
    button_problem,
    signed_interaction,
    slack_payload_problem,
)
from tests.fakes.listener import RecordingListener

SECRET = "8f742231b10e8888abcd99b1ea0d4e0a"  # the shape of Slack's: 32 hex digits
WAIT_S = 20
# Slack shows a press as failed without a 200 within 3 s.
SLACK_ACK_S = 3.0


@pytest.fixture
def webhooks() -> Iterator[FakeWebhooks]:
    with FakeWebhooks() as fake:
        yield fake


@pytest.fixture
def responses() -> Iterator[FakeResponseUrls]:
    with FakeResponseUrls() as fake:
        yield fake


@dataclass
class Desk:
    """An account with a Slack channel that verifies presses, a technician who escalated,
    and two seniors linked to Slack members."""

    server: BatonProcess
    http: httpx.AsyncClient
    acme: Tenant
    channel_id: uuid.UUID
    tech: Person
    dana: Person
    sam: Person
    handoff_id: uuid.UUID

    def interactions_path(self, channel_id: uuid.UUID | str | None = None) -> str:
        return f"{API}/integrations/slack/{channel_id or self.channel_id}/interactions"

    async def post(
        self, body: bytes, headers: dict[str, str], channel_id: uuid.UUID | str | None = None
    ) -> httpx.Response:
        return await self.http.post(self.interactions_path(channel_id), content=body, headers=headers)

    async def press(
        self,
        slack_user_id: str,
        response_url: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        value: str | None = None,
    ) -> httpx.Response:
        payload = block_actions_payload(
            slack_user_id=slack_user_id, value=value or str(self.handoff_id), response_url=response_url
        )
        body, headers = signed_interaction(secret, payload, timestamp=timestamp)
        return await self.post(body, headers)

    async def handoff(self) -> dict[str, Any]:
        response = await self.http.get(f"{API}/handoffs/{self.handoff_id}", headers=self.dana.headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


async def _user(acme: Tenant, role: str, name: str, slack_user_id: str | None, **extra: Any) -> Person:
    person = await acme.user(role, name)
    if slack_user_id is not None or extra:
        body = {"email": f"{person.id.hex[:8]}@example.com", "name": name, "account_role": role, **extra}
        if slack_user_id is not None:
            body["slack_user_id"] = slack_user_id
        response = await acme.put(f"/users/{person.id}", body)
        assert response.status_code == 200, response.text
    return person


async def _slack_channel(acme: Tenant, url: str, **extra: Any) -> uuid.UUID:
    channel_id = uuid.uuid4()
    response = await acme.put(f"/channels/{channel_id}", {"kind": "slack", "url": url, **extra})
    assert response.status_code == 201, response.text
    assert response.json()["has_signing_secret"] is ("signing_secret" in extra)
    assert SECRET not in response.text
    return channel_id


@pytest.fixture
async def desk_on(
    baton: BatonProcesses, db: asyncpg.Connection, webhooks: FakeWebhooks
) -> AsyncIterator[Any]:
    """``await desk_on(env)``: a Desk on a ``baton serve`` of that environment."""
    clients: list[httpx.AsyncClient] = []

    async def make(env: dict[str, str] | None = None, *, escalate: bool = True) -> Desk:
        server = baton.serve(env=env)
        http = httpx.AsyncClient(base_url=server.base_url, timeout=30)
        clients.append(http)
        acme = await new_tenant(db, http)
        channel_id = await _slack_channel(acme, webhooks.slack_url, signing_secret=SECRET)
        tech = await _user(acme, "technician", "Tess Tech", "U0TESS")
        dana = await _user(acme, "engineer", "Dana Okafor", "U0DANA")
        sam = await _user(acme, "engineer", "Sam Reyes", "U0SAM")
        handoff_id = uuid.uuid4()
        if escalate:
            session_id = await acme.session(tech, **DIAGNOSTIC_SESSION)
            created = await acme.handed_off(tech, session_id, "escalate", engineer_notes="VPN down for all")
            handoff_id = uuid.UUID(created["id"])
        return Desk(server, http, acme, channel_id, tech, dana, sam, handoff_id)

    yield make
    for http in clients:
        await http.aclose()


@pytest.fixture
async def desk(desk_on: Any) -> Desk:
    desk: Desk = await desk_on()
    return desk


def _count(items: list[Any]) -> Callable[[], Awaitable[int]]:
    """For ``settled``: how many there are now (a fake appends from its own thread)."""

    async def count() -> int:
        return len(items)

    return count


def _lines(answer: dict[str, Any]) -> list[str]:
    """Every text a person sees in a Slack message: its blocks' texts and fields."""
    lines = []
    for block in answer.get("blocks", []):
        if "text" in block:
            lines.append(block["text"]["text"])
        lines += [field["text"] for field in block.get("fields", [])]
    return lines


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


async def _claims(db: asyncpg.Connection, handoff_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow("SELECT state, claimed_by FROM session_handoffs WHERE id = $1", handoff_id)
    assert row is not None
    return row


# ------------------------------------------------------------------ the button


async def test_the_message_carries_pick_up_and_a_press_wins_with_one_replaced_message(
    baton: BatonProcesses,
    desk_on: Any,
    webhooks: FakeWebhooks,
    responses: FakeResponseUrls,
    db: asyncpg.Connection,
) -> None:
    """The whole way: the worker posts the escalation with a Pick up button (the channel
    has a signing secret; one without gets none), a senior presses it, Slack gets its 200
    at once and then exactly one replacement saying who picked it up."""
    desk: Desk = await desk_on(escalate=False)
    await _slack_channel(desk.acme, webhooks.slack_url)  # no secret: no button
    worker = baton.worker(env=worker_env())
    session_id = await desk.acme.session(desk.tech, **DIAGNOSTIC_SESSION)
    created = await desk.acme.handed_off(desk.tech, session_id, "escalate", engineer_notes="VPN down for all")
    desk.handoff_id = uuid.UUID(created["id"])

    wait_for(lambda: len(webhooks.slack) >= 2, WAIT_S, "both Slack messages", poll_s=0.05)
    with_button = [m for m in webhooks.slack if any(b["action_id"] == "baton_pickup" for b in _buttons(m))]
    assert len(with_button) == 1, webhooks.slack
    [pickup] = [b for b in _buttons(with_button[0]) if b["action_id"] == "baton_pickup"]
    assert pickup["text"] == {"type": "plain_text", "text": "Pick up", "emoji": False}
    assert pickup["value"] == str(desk.handoff_id)
    assert button_problem(pickup) is None and slack_payload_problem(with_button[0]) is None

    started = time.monotonic()
    pressed = await desk.press("U0DANA", responses.response_url(), value=pickup["value"])
    assert pressed.status_code == 200 and pressed.content == b""
    assert time.monotonic() - started < SLACK_ACK_S

    [answer] = responses.wait_for(1, WAIT_S, desk.server.log)
    assert answer["replace_original"] is True
    assert "response_type" not in answer or answer["response_type"] == "in_channel"
    picked = [line for line in _lines(answer) if line.startswith("Picked up by")]
    assert len(picked) == 1 and picked[0].startswith("Picked up by Dana Okafor at "), answer
    assert all(b["action_id"] != "baton_pickup" for b in _buttons(answer))
    assert slack_payload_problem(answer) is None
    handoff = await desk.handoff()
    assert handoff["state"] == "claimed" and handoff["claimed_by"]["id"] == str(desk.dana.id)
    assert await settled(_count(responses.received)) == 1
    # The signing secret is never in a log line of either process.
    assert SECRET not in desk.server.log() and SECRET not in worker.log()


async def test_every_tier_of_a_policy_posts_pick_up_and_a_later_tiers_button_wins(
    baton: BatonProcesses, desk_on: Any, webhooks: FakeWebhooks, responses: FakeResponseUrls
) -> None:
    """Tier messages reuse the escalation's composer: each carries the button too."""
    desk: Desk = await desk_on(escalate=False)
    await put_policy(
        desk.acme,
        {"tiers": [tier(0, ["slack"], roles=["engineer"]), tier(1, ["slack"], roles=["engineer"])]},
    )
    baton.worker(env=worker_env())
    session_id = await desk.acme.session(desk.tech, **DIAGNOSTIC_SESSION)
    created = await desk.acme.handed_off(desk.tech, session_id, "escalate")
    desk.handoff_id = uuid.UUID(created["id"])

    wait_for(lambda: len(webhooks.slack) >= 2, WAIT_S, "tier 0's and tier 1's Slack messages")
    values = [b["value"] for m in webhooks.slack for b in _buttons(m) if b["action_id"] == "baton_pickup"]
    assert values == [created["id"], created["id"]]
    assert (await desk.press("U0SAM", responses.response_url(), value=values[1])).status_code == 200
    [answer] = responses.wait_for(1, WAIT_S, desk.server.log)
    assert answer["replace_original"] is True
    assert any(line.startswith("Picked up by Sam Reyes at ") for line in _lines(answer))


async def test_slacks_200_does_not_wait_for_the_answer_to_be_taken(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    """The 3-second rule: the claim and the answer come after the 200, so a response_url
    that takes its time holds nothing up."""
    responses.hold()
    started = time.monotonic()
    pressed = await desk.press("U0DANA", responses.response_url())
    took = time.monotonic() - started
    assert pressed.status_code == 200 and took < 1.0, took
    await eventually(lambda: _state_is(db, desk.handoff_id, "claimed"), WAIT_S, "the claim")
    assert responses.received == []
    responses.release()
    [answer] = responses.wait_for(1, WAIT_S, desk.server.log)
    assert answer["replace_original"] is True


async def _state_is(db: asyncpg.Connection, handoff_id: uuid.UUID, state: str) -> bool:
    return bool((await _claims(db, handoff_id))["state"] == state)


# ------------------------------------------------------------------ the signature


async def test_a_forged_stale_or_unknown_channels_request_is_401_and_nothing_is_done(
    desk: Desk, webhooks: FakeWebhooks, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    payload = block_actions_payload(
        slack_user_id="U0DANA", value=str(desk.handoff_id), response_url=responses.response_url()
    )
    teams = uuid.uuid4()
    response = await desk.acme.put(f"/channels/{teams}", {"kind": "teams", "url": webhooks.teams_url})
    assert response.status_code == 201
    no_secret = await _slack_channel(desk.acme, webhooks.slack_url)
    good_body, good_headers = signed_interaction(SECRET, payload)
    before = await database_fingerprint(db)

    refused: dict[str, httpx.Response] = {}
    body, headers = signed_interaction("not-the-channels-secret-0000000", payload)
    refused["signed with another secret"] = await desk.post(body, headers)
    refused["the body changed after signing"] = await desk.post(good_body + b"&x=1", good_headers)
    body, headers = signed_interaction(SECRET, payload, timestamp=int(time.time()) - 301)
    refused["301 s old"] = await desk.post(body, headers)
    # Ahead by more than the window even if this machine is slow to send it (the gap
    # shrinks as time passes).
    body, headers = signed_interaction(SECRET, payload, timestamp=int(time.time()) + 330)
    refused["330 s ahead"] = await desk.post(body, headers)
    refused["no signature"] = await desk.post(
        good_body, {k: v for k, v in good_headers.items() if k != "X-Slack-Signature"}
    )
    refused["no timestamp"] = await desk.post(
        good_body, {k: v for k, v in good_headers.items() if k != "X-Slack-Request-Timestamp"}
    )
    refused["a signature of the wrong version"] = await desk.post(
        good_body, {**good_headers, "X-Slack-Signature": "v1=" + good_headers["X-Slack-Signature"][3:]}
    )
    refused["no such channel"] = await desk.post(good_body, good_headers, uuid.uuid4())
    refused["a Teams channel"] = await desk.post(good_body, good_headers, teams)
    refused["a channel without a secret"] = await desk.post(good_body, good_headers, no_secret)

    details = set()
    for why, answer in refused.items():
        assert answer.status_code == 401, (why, answer.text)
        details.add(assert_problem(answer, 401)["detail"])
    assert len(details) == 1  # which check failed is not told
    # A channel id that is no UUID does not match the route, as everywhere in the API.
    assert (await desk.post(good_body, good_headers, "not-a-uuid")).status_code == 404
    assert await database_fingerprint(db) == before
    assert await _state_is(db, desk.handoff_id, "open")
    assert responses.requests == []
    # The good request itself still works: the refusals were for what they changed.
    assert (await desk.post(good_body, good_headers)).status_code == 200
    responses.wait_for(1, WAIT_S, desk.server.log)


async def test_a_replayed_press_is_401_and_claims_nothing_even_after_a_release(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    payload = block_actions_payload(
        slack_user_id="U0DANA", value=str(desk.handoff_id), response_url=responses.response_url()
    )
    body, headers = signed_interaction(SECRET, payload)
    assert (await desk.post(body, headers)).status_code == 200
    responses.wait_for(1, WAIT_S, desk.server.log)
    released = await desk.http.post(f"{API}/handoffs/{desk.handoff_id}/release", headers=desk.dana.headers)
    assert released.status_code == 200, released.text

    # The same signed request again, well within its 300 s: a replay, whoever sends it.
    replay = await desk.post(body, headers)
    assert_problem(replay, 401)
    assert await _state_is(db, desk.handoff_id, "open")
    assert await settled(_count(responses.received)) == 1


async def test_a_body_over_128_kib_is_refused_before_anything_is_read(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    payload = block_actions_payload(
        slack_user_id="U0DANA", value=str(desk.handoff_id), response_url=responses.response_url()
    )
    payload["padding"] = "x" * (128 * 1024)
    body, headers = signed_interaction(SECRET, payload)
    answer = await desk.post(body, headers)
    assert answer.status_code == 413, answer.text
    assert await _state_is(db, desk.handoff_id, "open")
    assert responses.requests == []


# ------------------------------------------------------------------ who pressed


async def test_two_seniors_pressing_at_once_one_wins_and_the_other_is_told_who(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    dana_url, sam_url = responses.response_url(), responses.response_url()
    pressed = await asyncio.gather(desk.press("U0DANA", dana_url), desk.press("U0SAM", sam_url))
    assert [p.status_code for p in pressed] == [200, 200]

    answers = responses.wait_for(2, WAIT_S, desk.server.log)
    handoff = await desk.handoff()
    assert handoff["state"] == "claimed"
    winner = handoff["claimed_by"]["name"]
    assert winner in {"Dana Okafor", "Sam Reyes"}
    winner_url = dana_url if winner == "Dana Okafor" else sam_url
    won = [a for a in answers if a.get("replace_original") is True]
    lost = [a for a in answers if a.get("response_type") == "ephemeral"]
    assert len(won) == 1 and len(lost) == 1, answers
    assert winner_url.endswith(won[0]["_path"])
    [picked] = [line for line in _lines(won[0]) if line.startswith("Picked up by")]
    assert picked.startswith(f"Picked up by {winner} at ")
    assert lost[0]["replace_original"] is False
    assert lost[0]["text"].startswith(f"Already picked up by {winner} at ")
    assert lost[0]["text"].endswith(" UTC.")
    claims = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE actor_name = 'generate_briefing' AND payload->>'handoff_id' = $1",
        str(desk.handoff_id),
    )
    assert claims == 1  # exactly one winning claim wrote its briefing job
    assert await settled(_count(responses.received)) == 2


async def test_an_unmapped_an_inactive_and_the_creators_press_are_told_why_and_claim_nothing(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    await _user(desk.acme, "engineer", "Ivy Inactive", "U0IVY", is_active=False)
    gone = await _user(desk.acme, "engineer", "Gus Gone", "U0GUS")
    await db.execute("UPDATE users SET deleted_at = now() WHERE id = $1", gone.id)

    expected = {
        "U0NOBODY": "Your Slack account is not linked to a Baton user",
        "U0IVY": "Your Baton user is inactive or deleted",
        "U0GUS": "Your Baton user is inactive or deleted",
        "U0TESS": "You handed this off yourself",
    }
    for pressed, slack_user_id in enumerate(expected, start=1):
        url = responses.response_url()
        assert (await desk.press(slack_user_id, url)).status_code == 200
        # Counted before: the answer may well arrive before the press's 200 is read.
        [*_, answer] = responses.wait_for(pressed, WAIT_S, desk.server.log)
        assert url.endswith(answer["_path"])
        assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
        assert answer["text"].startswith(expected[slack_user_id]), answer
        assert answer["blocks"][0]["text"]["type"] == "plain_text"
    assert await _state_is(db, desk.handoff_id, "open")


async def test_a_press_on_another_accounts_hand_off_claims_nothing(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    """A button's value names a hand-off; one of another account is not found, as ever."""
    other = await new_tenant(db, desk.http, "Other MSP")
    their_tech = await other.user("technician", "Their Tech")
    session_id = await other.session(their_tech)
    theirs = uuid.UUID((await other.handed_off(their_tech, session_id, "escalate"))["id"])
    assert (await desk.press("U0DANA", responses.response_url(), value=str(theirs))).status_code == 200
    [answer] = responses.wait_for(1, WAIT_S, desk.server.log)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "This hand-off is no longer in Baton."
    assert await _state_is(db, theirs, "open")


async def test_presses_baton_does_not_act_on_are_answered_200_and_change_nothing(
    desk: Desk, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    """Slack sends the app every interaction: the inbox link button's press, a button
    value that is no hand-off id. Each is Slack's (signed): 200, and nothing done."""
    before = await database_fingerprint(db)
    url = responses.response_url()
    link = block_actions_payload(slack_user_id="U0DANA", value="x", response_url=url, action_id="open_inbox")
    bad_value = block_actions_payload(slack_user_id="U0DANA", value="not-a-uuid", response_url=url)
    shortcut = {"type": "shortcut", "callback_id": "x", "user": {"id": "U0DANA"}, "trigger_id": "1"}
    for payload in (link, bad_value, shortcut):
        body, headers = signed_interaction(SECRET, payload)
        answer = await desk.post(body, headers)
        assert answer.status_code == 200 and answer.content == b"", answer.text
    assert await database_fingerprint(db) == before
    assert await settled(_count(responses.requests)) == 0


# ------------------------------------------------------------------ where answers go


async def test_a_response_url_the_outbound_rule_refuses_is_never_called_and_nothing_is_claimed(
    desk_on: Any, webhooks: FakeWebhooks, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    with RecordingListener() as witness:
        endpoints = f"127.0.0.1:{webhooks.port},127.0.0.1:{responses.port}"
        desk: Desk = await desk_on(
            {"BATON_OUTBOUND_ALLOW_CIDRS": "", "BATON_OUTBOUND_ALLOW_ENDPOINTS": endpoints}
        )
        for url in (
            "https://169.254.169.254/latest/meta-data/",  # cloud metadata
            f"http://127.0.0.1:{witness.port}/actions/T000/1/x",  # loopback, not allowed
            f"https://127.0.0.1:{witness.port}/actions/T000/1/x",
        ):
            assert (await desk.press("U0DANA", url)).status_code == 200
        wait_for(
            lambda: desk.server.log().count("its response_url was refused") == 3,
            WAIT_S,
            "three refused response_urls in the log",
        )
        assert witness.connections == []
        assert await _state_is(db, desk.handoff_id, "open")
        # The allowed endpoint (Slack's own, in production) is answered as usual.
        assert (await desk.press("U0DANA", responses.response_url())).status_code == 200
        assert responses.wait_for(1, WAIT_S, desk.server.log)[0]["replace_original"] is True
        assert witness.connections == []


# ------------------------------------------------------------------ Redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "slack-redis", free_port(), durable=False)
    server.start()
    try:
        yield server
    finally:
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGCONT)  # never leave it stopped, whatever failed
        server.stop()


async def test_with_redis_stalled_a_press_is_refused_503_within_about_a_second_and_claims_nothing(
    desk_on: Any, own_redis: EmbeddedRedis, responses: FakeResponseUrls, db: asyncpg.Connection
) -> None:
    """A replay cannot be told from a first press without Redis: refused (fail closed)."""
    desk: Desk = await desk_on({"REDIS_URL": own_redis.url})
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = await desk.press("U0DANA", responses.response_url())
        took = time.monotonic() - started
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    body = assert_problem(answer, 503)
    assert "replay" in body["detail"] and answer.headers["Retry-After"]
    assert took < 2.0, took
    assert await _state_is(db, desk.handoff_id, "open")
    assert responses.requests == []
