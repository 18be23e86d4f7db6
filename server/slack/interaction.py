"""Slack's interaction payload, as Baton reads it: the few fields it uses, nothing else.

Slack posts ``application/x-www-form-urlencoded`` with one field, ``payload``: a JSON
object of Slack's shape (``type``, ``user``, ``actions``, ``response_url``, ``team``,
``channel``, ``message``, ``container``, …). Baton decodes only ``type``,
``user.id``, ``actions[].action_id`` / ``value`` and ``response_url``; every other field,
and any field Slack adds later, is skipped by the decoder, never refused.

A press Baton acts on is a ``block_actions`` payload whose first action is the Pick up
button (``actors.chat.PICKUP_ACTION_ID``) with a hand-off id for value. Anything else
Slack sends the app (the "Open the inbox" link button's press, a shortcut, a modal) is
answered 200 and left alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

import msgspec

from server.problems import Problem

BLOCK_ACTIONS = "block_actions"
FORM_FIELDS_MAX = 16


class _User(msgspec.Struct):
    id: str = ""


class _Action(msgspec.Struct):
    action_id: str = ""
    value: str | None = None


class _Payload(msgspec.Struct):
    type: str = ""
    user: _User | None = None
    actions: list[_Action] = []
    response_url: str | None = None


@dataclass(frozen=True, slots=True)
class Press:
    """A Pick up press: who pressed (their Slack member id), what, and where to answer."""

    slack_user_id: str
    handoff_id: uuid.UUID
    response_url: str

    def __repr__(self) -> str:  # the response_url is a capability: never in a log line
        return f"Press(slack_user_id={self.slack_user_id!r}, handoff_id={self.handoff_id})"


def _unreadable(what: str) -> Problem:
    return Problem(400, f"The Slack interaction request {what}.")


def payload_of(body: bytes) -> _Payload:
    """The ``payload`` field of a verified form body, decoded; 400 when there is none."""
    try:
        fields = parse_qsl(body.decode("utf-8"), max_num_fields=FORM_FIELDS_MAX, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise _unreadable("is not a form body") from None
    text = next((value for name, value in fields if name == "payload"), None)
    if text is None:
        raise _unreadable("has no payload field")
    try:
        return msgspec.json.decode(text, type=_Payload)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        raise _unreadable("has a payload that is not Slack's interaction JSON") from None


def press_of(payload: _Payload) -> Press | None:
    """The Pick up press the payload carries; None for anything Baton does not act on."""
    # Imported here: actors bind to REDIS_URL when imported (see server.handoffs.jobs).
    from actors.chat import PICKUP_ACTION_ID

    if payload.type != BLOCK_ACTIONS or not payload.actions or payload.user is None:
        return None
    action = payload.actions[0]
    if action.action_id != PICKUP_ACTION_ID or not action.value or not payload.user.id:
        return None
    if not payload.response_url:
        return None  # nowhere to answer: nothing is done (the inbox still has the card)
    try:
        handoff_id = uuid.UUID(action.value)
    except ValueError:
        return None
    return Press(slack_user_id=payload.user.id, handoff_id=handoff_id, response_url=payload.response_url)
