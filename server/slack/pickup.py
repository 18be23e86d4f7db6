"""A verified Pick up press, answered after Slack has its 200: claim, then tell Slack.

Slack wants its 200 within 3 s and shows the press as failed otherwise; the claim and the
answer through ``response_url`` come after it (``answer_press``, run as the response's
background task). Why in this process and not a Dramatiq job: the one claim path
(``server.handoffs.claim``) is the web's (its connection handling, its answers, the
publish after commit on the web's bounded Redis client), and actors may not import
``server``; the work is one claim (~2 ms) and one POST bounded by
``BATON_DELIVERY_TIMEOUT_S``. It runs inside the request's ASGI call after the answer is
sent, so uvicorn's graceful shutdown waits for it like any request in flight; a replica
killed in between leaves the claim all or nothing (one statement), and a press again
finds it and says so.

What Slack is told (``response_url``, which must pass the outbound rule, checked before
anything is done: a press whose answer cannot be delivered changes nothing):
- a win: ``replace_original`` with the message as composed for the channel, the button
  replaced by "Picked up by {name} at {HH:MM} UTC";
- otherwise an ephemeral answer to the presser alone, saying why: someone else has it
  (who and when), it is theirs already, they handed it off themselves, their Slack
  account is not linked to a Baton user, or that user is inactive or deleted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any

import redis.asyncio

from server.auth import UserCaller
from server.handoffs.claim import OWN_HANDOFF, claim_handoff
from server.problems import Problem
from server.slack.interaction import Press
from tables.limits import SLACK_USER_ID_MAX
from tables.queries import people

log = logging.getLogger("baton.slack")

NOT_LINKED = (
    "Your Slack account is not linked to a Baton user, so Baton cannot pick this up for you. "
    "Ask your Baton admin to add your Slack member ID to your Baton user."
)
INELIGIBLE = "Your Baton user is inactive or deleted, so you cannot pick up hand-offs."
OWN = "You handed this off yourself: another engineer has to pick it up."
GONE = "This hand-off is no longer in Baton."
FAILED = "Baton could not pick this up just now. Try again, or pick it up in the Baton inbox."
RESPONSE_URL = "Slack response_url"
SEND_ATTEMPTS = 3
SEND_RETRY_DELAY_S = 0.5


def _at(iso: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return None


def ephemeral(text: str) -> dict[str, Any]:
    """An answer only the presser sees, leaving the message as it is. Plain text: it can
    hold a name, which is user text (SPEC "Injection")."""
    from actors.chat import slack_escape, slack_plain

    return {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": slack_escape(text),
        "mrkdwn": False,
        "blocks": [{"type": "section", "text": slack_plain(text)}],
    }


def _lost(problem: Problem) -> str:
    """Why the claim did not go through, for the presser."""
    from actors.chat import clock_time

    if problem.status_code == 403 and problem.detail == OWN_HANDOFF:
        return OWN
    if problem.status_code == 404:
        return GONE
    name = problem.members.get("claimed_by_name")
    if problem.status_code == 409 and name:
        at = _at(problem.members.get("claimed_at"))
        return f"Already picked up by {name}" + (f" at {clock_time(at)}" if at else "") + "."
    return str(problem.detail)


async def _won(account_id: uuid.UUID, handoff_id: uuid.UUID, name: str, at: datetime) -> dict[str, Any]:
    """The message again, the button replaced by who picked it up."""
    from actors.chat import PickedUp, inbox_link, picked_up_line, slack_message
    from actors.context import load

    picked_up = PickedUp(name=name, at=at)
    ctx = await load(handoff_id)
    if ctx is None or ctx.account_id != account_id:
        return {"replace_original": True, "text": picked_up_line(picked_up)}
    return {"replace_original": True, **slack_message(ctx, inbox_link(), picked_up=picked_up)}


async def _reply(account_id: uuid.UUID, press: Press, redis_client: redis.asyncio.Redis) -> dict[str, Any]:
    """Claim as the presser, through the one claim path; what to tell Slack."""
    from actors.chat import clock_time

    presser = None
    if len(press.slack_user_id) <= SLACK_USER_ID_MAX:
        presser = await people.user_of_slack_id(account_id=account_id, slack_user_id=press.slack_user_id)
    if presser is None:
        return ephemeral(NOT_LINKED)
    if not presser.eligible:
        return ephemeral(INELIGIBLE)
    caller = UserCaller(account_id=account_id, id=presser.id, name=presser.name, role=presser.account_role)
    try:
        claimed = await claim_handoff(caller=caller, handoff_id=press.handoff_id, redis_client=redis_client)
    except Problem as problem:
        log.info(
            "Slack press on hand-off %s by user %s not claimed: %s",
            press.handoff_id,
            presser.id,
            problem.detail,
        )
        return ephemeral(_lost(problem))
    at = claimed.handoff.claimed_at
    if not claimed.won_now:
        return ephemeral("You picked this up already" + (f" at {clock_time(at)}." if at else "."))
    log.info("hand-off %s picked up from Slack by user %s", press.handoff_id, presser.id)
    return await _won(account_id, press.handoff_id, presser.name, at or datetime.now().astimezone())


async def _send(response_url: str, reply: dict[str, Any]) -> None:
    """POST the reply, a few tries for a failure worth another; logged without the URL."""
    from actors.deliveries import SendError
    from actors.http import call, status_line

    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            response = await call("POST", response_url, what=RESPONSE_URL, json=reply)
        except SendError as exc:
            if exc.permanent or attempt == SEND_ATTEMPTS:
                log.warning("answer to a Slack press not delivered: %s", exc)
                return
        else:
            if response.is_success:
                log.info("answer to a Slack press delivered (attempt %d)", attempt)
                return
            if response.status_code < 500 or attempt == SEND_ATTEMPTS:
                log.warning("answer to a Slack press refused: %s: %s", RESPONSE_URL, status_line(response))
                return
        await asyncio.sleep(SEND_RETRY_DELAY_S * attempt)


async def answer_press(
    *, account_id: uuid.UUID, channel_id: uuid.UUID, press: Press, redis_client: redis.asyncio.Redis
) -> None:
    """The press's background work: never raises (nothing is left to answer it)."""
    from actors.outbound import DestinationRefused, check_url

    try:
        try:
            await check_url(press.response_url)
        except DestinationRefused as refused:
            log.warning(
                "Slack press on channel %s ignored: its response_url was refused (%s)",
                channel_id,
                refused.summary,
            )
            return
        try:
            reply = await _reply(account_id, press, redis_client)
        except Exception:
            log.exception("Slack press on hand-off %s failed", press.handoff_id)
            reply = ephemeral(FAILED)
        await _send(press.response_url, reply)
    except Exception:
        log.exception("Slack press on hand-off %s: its answer failed", press.handoff_id)
