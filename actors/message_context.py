"""Log lines written while a worker handles a message name the message and its hand-off.

Bound in the worker thread before the actor runs; an async actor's coroutine is handed to
the event loop with ``call_soon_threadsafe``, which carries the thread's context along, so
the actor's own lines (on the loop thread) carry the ids too.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

import log_context


@cache
def _handoff_position(broker: dramatiq.Broker, actor_name: str) -> int | None:
    """Where an actor takes ``handoff_id`` positionally, if it does."""
    try:
        parameters = list(inspect.signature(broker.get_actor(actor_name).fn).parameters)
    except (dramatiq.errors.ActorNotFound, TypeError, ValueError):
        return None
    return parameters.index("handoff_id") if "handoff_id" in parameters else None


def handoff_id_of(broker: dramatiq.Broker, message: MessageProxy | dramatiq.Message[Any]) -> object:
    if "handoff_id" in message.kwargs:
        return message.kwargs["handoff_id"]
    position = _handoff_position(broker, message.actor_name)
    if position is not None and position < len(message.args):
        return message.args[position]
    return None


class MessageLogContext(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # Cleared first: this thread's previous message must not lend its ids.
        log_context.clear()
        log_context.bind(
            message_id=message.message_id,
            actor=message.actor_name,
            handoff_id=handoff_id_of(broker, message),
        )
