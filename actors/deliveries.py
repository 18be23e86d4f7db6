"""The deliveries ledger: claim a row before sending, mark it after.

One row per hand-off × channel × recipient (unique). A send goes through three steps:

1. ``ensure`` inserts the rows (``ON CONFLICT DO NOTHING``): a retried fan-out finds
   them instead of adding more.
2. ``claim`` moves one row ``pending -> sending`` in one conditional ``UPDATE``. Only
   one attempt can win it, so a redelivered or retried message never sends a row that
   another attempt holds or has sent.
3. The send, then ``mark_sent`` / ``mark_retry`` / ``mark_failed``.

A crash between the send and the mark leaves a row ``sending``. A row that has been
``sending`` longer than its lease is taken to be a crashed attempt and may be claimed
again; the claim records that in ``last_error`` and tells the sender
(``Claim.interrupted``). The lease must outlast any live attempt, or a redelivered or
retried message re-sends a row whose first attempt is still waiting for the server:
``deliver(deadline_s=…)`` runs the send under that deadline and leases the row for the
deadline plus ``LEASE_MARGIN_S`` (room for the claim and the mark); without a deadline
the lease is ``stale_after_s()``, twice the send timeout. The marks apply only to the
attempt that holds the claim (``attempts``): a late attempt whose row was reclaimed
changes nothing and says so loudly. What a crash means per channel, the at-most-once /
at-least-once choice:

- **email, slack, teams, reminder**: at-least-once. The crashed attempt may or may not
  have reached the server; SMTP and webhooks offer no way to ask, and a lost
  escalation costs more than a repeated one. The window is the few milliseconds
  between the server's acceptance and ``mark_sent``. Each e-mail carries a
  ``Message-ID`` derived from its row, so a repeat is recognisable as one message.
- **psa**: effectively once. An interrupted or retried push first asks the PSA whether
  a note carrying the hand-off's marker is already on the ticket, and adopts it.
- **bell**: written in the hand-off's own transaction; its row is ``sent`` at birth.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import dramatiq
from dramatiq import get_broker as message_broker
from dramatiq.middleware import CurrentMessage

from actors.metrics import count_delivery
from settings import get_settings
from tables.queries import deliveries as ledger
from tables.queries.deliveries import INTERRUPTED_NOTE as INTERRUPTED_NOTE  # the ledger's own words

log = logging.getLogger("baton.deliveries")

LAST_ERROR_MAX_CHARS = 500


class SendError(Exception):
    """A send that failed. ``permanent``: retrying cannot help (bad address, 4xx)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Outcome(enum.Enum):
    SENT = "sent"  # sent now
    ALREADY_SENT = "already_sent"  # an earlier attempt did it
    FAILED = "failed"  # given up: permanent error or out of attempts
    RETRY = "retry"  # failed for now; the row is pending again
    IN_FLIGHT = "in_flight"  # another attempt holds the row; try again later

    @property
    def needs_retry(self) -> bool:
        return self in (Outcome.RETRY, Outcome.IN_FLIGHT)


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    recipient: str
    attempts: int
    interrupted: bool  # a crashed attempt held this row before us
    channel: str = ""


# A lease is the attempt's deadline plus this: the claim's answer and the mark's
# Postgres round trips (a connection from a busy pool) happen outside the deadline.
LEASE_MARGIN_S = 15.0


def stale_after_s() -> float:
    """The lease of a send without a deadline of its own (one webhook post, a PSA push)."""
    return 2 * get_settings().delivery_timeout_s


def lease_s(deadline_s: float | None) -> float:
    """How long a claim holds its row before it may be taken for a crashed attempt."""
    return stale_after_s() if deadline_s is None else deadline_s + LEASE_MARGIN_S


def _error_text(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    return text[:LAST_ERROR_MAX_CHARS]


async def ensure(
    account_id: uuid.UUID, handoff_id: uuid.UUID, channel: str, recipients: Iterable[str]
) -> dict[str, uuid.UUID]:
    """The rows for ``recipients`` (created when missing): {recipient: delivery id}."""
    wanted = list(dict.fromkeys(recipients))
    return await ledger.ensure_rows(
        account_id=account_id, handoff_id=handoff_id, channel=channel, recipients=wanted
    )


async def claim(delivery_id: uuid.UUID, *, lease: float | None = None) -> Claim | Outcome:
    """Take the row for one send, or say why not (already sent, failed, in flight).

    ``lease``: how long a row may stay ``sending`` before it counts as a crashed attempt
    (default ``stale_after_s()``); every claimer of a channel's rows passes the same.
    """
    row = await ledger.claim_row(delivery_id=delivery_id, lease_s=stale_after_s() if lease is None else lease)
    if row is not None:
        claimed = Claim(row.id, row.recipient, row.attempts, row.interrupted, row.channel)
        if claimed.interrupted:
            log.warning(
                "%s delivery %s: taken over from an attempt that held it past its lease "
                "(a crashed worker); attempt %d sends it again",
                claimed.channel,
                claimed.id,
                claimed.attempts,
            )
        return claimed
    state = await ledger.row_state(delivery_id=delivery_id)
    if state is not None and state.status == "sent":
        return Outcome.ALREADY_SENT
    if state is None or state.status == "failed":
        return Outcome.FAILED
    return Outcome.IN_FLIGHT


# Each mark applies only while the row is still this attempt's claim (``attempts`` is the
# claim's number; tables/queries/deliveries.py): a row reclaimed meanwhile belongs to the
# later attempt, and the late one changes nothing but says so loudly.


async def _claim_lost(claimed: Claim, what: str) -> None:
    now = await ledger.row_state(delivery_id=claimed.id)
    log.error(
        "%s delivery %s: attempt %d %s, but the row is no longer its claim (now %s, attempt %s): "
        "another attempt took it over as crashed, so the message may go out twice; the lease "
        "is shorter than this attempt took",
        claimed.channel,
        claimed.id,
        claimed.attempts,
        what,
        now.status if now else "gone",
        now.attempts if now else "-",
    )


async def mark_sent(claimed: Claim) -> None:
    if not await ledger.mark_sent(delivery_id=claimed.id, attempt=claimed.attempts):
        await _claim_lost(claimed, "sent it")


async def mark_retry(claimed: Claim, error: BaseException | str, *, max_attempts: int) -> Outcome:
    """Back to ``pending`` for another try, or ``failed`` once ``max_attempts`` are spent."""
    status = await ledger.mark_retry(
        delivery_id=claimed.id, attempt=claimed.attempts, error=_error_text(error), max_attempts=max_attempts
    )
    if status is None:
        await _claim_lost(claimed, f"failed ({_error_text(error)})")
        return Outcome.IN_FLIGHT
    return Outcome.FAILED if status == "failed" else Outcome.RETRY


async def mark_failed(claimed: Claim, error: BaseException | str) -> Outcome:
    if not await ledger.mark_failed(
        delivery_id=claimed.id, attempt=claimed.attempts, error=_error_text(error)
    ):
        await _claim_lost(claimed, f"failed for good ({_error_text(error)})")
        return Outcome.IN_FLIGHT
    return Outcome.FAILED


async def deliver(
    delivery_id: uuid.UUID,
    send: Callable[[Claim], Awaitable[object]],
    *,
    max_attempts: int,
    deadline_s: float | None = None,
) -> Outcome:
    """Claim, send, mark: one send of one row, whatever happens to it.

    ``send`` raises ``SendError(permanent=True)`` for what no retry can fix; any other
    exception counts as transient. Never raises for a failed send, so one recipient's
    failure never stops the others. ``deadline_s``: the longest the send may take; the
    row is leased for that plus ``LEASE_MARGIN_S`` (``lease_s``), so no other attempt
    takes it while this one may still be talking to the server. Every caller of one
    channel passes the same deadline.
    """
    claimed = await claim(delivery_id, lease=lease_s(deadline_s))
    if isinstance(claimed, Outcome):
        return claimed
    # Shielded: once a send has begun, its outcome is recorded even if the actor is
    # cancelled meanwhile (a Dramatiq time limit, a shutdown). A send the server took
    # but the ledger never marked is exactly what a later attempt would send again.
    outcome = await asyncio.shield(
        _send_claimed(claimed, send, max_attempts=max_attempts, deadline_s=deadline_s)
    )
    count_delivery(claimed.channel, outcome.value)
    return outcome


async def _send_claimed(
    claimed: Claim,
    send: Callable[[Claim], Awaitable[object]],
    *,
    max_attempts: int,
    deadline_s: float | None,
) -> Outcome:
    try:
        async with asyncio.timeout(deadline_s):
            await send(claimed)
    except SendError as exc:
        if exc.permanent:
            return await mark_failed(claimed, exc)
        return await mark_retry(claimed, exc, max_attempts=max_attempts)
    except TimeoutError as exc:
        error = f"no outcome within the attempt's deadline of {deadline_s:g} s" if deadline_s else exc
        return await mark_retry(claimed, error, max_attempts=max_attempts)
    except Exception as exc:
        return await mark_retry(claimed, exc, max_attempts=max_attempts)
    await mark_sent(claimed)
    return Outcome.SENT


class DeliveriesPending(dramatiq.Retry):
    """Some sends of a message failed for now or are held elsewhere: Dramatiq retries it
    with the actor's backoff (or after ``delay_ms``). A ``Retry``, so the expected case is
    a warning line of ours rather than Dramatiq's error traceback; ``last_error`` on each
    row says why."""

    def __init__(self, what: str, outcomes: Iterable[Outcome], delay_ms: int | None = None) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.value] = counts.get(outcome.value, 0) + 1
        summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        super().__init__(f"{what}: {summary}", delay=delay_ms)


IN_FLIGHT_RETRY_MIN_S = 1.0


async def in_flight_retry_s(delivery_ids: list[uuid.UUID], lease: float) -> float:
    """When to look again at rows another attempt holds: a live attempt marks its row
    by itself; a crashed one's row can be claimed once its lease has run out."""
    left = await ledger.lease_left_s(delivery_ids=delivery_ids, lease_s=lease) or 0.0
    return max(IN_FLIGHT_RETRY_MIN_S, left + IN_FLIGHT_RETRY_MIN_S)


def raise_if_pending(what: str, outcomes: list[Outcome], *, in_flight_retry_s: float | None = None) -> None:
    """Retry the message when any send needs it. ``in_flight_retry_s``: when the only
    rows left are held by other attempts, come back then rather than on the backoff."""
    if any(outcome.needs_retry for outcome in outcomes):
        delay_ms = None
        if in_flight_retry_s is not None and Outcome.RETRY not in outcomes:
            delay_ms = int(in_flight_retry_s * 1000)
        pending = DeliveriesPending(what, outcomes, delay_ms)
        when = "with backoff" if delay_ms is None else f"in {delay_ms / 1000:.1f} s (held by another attempt)"
        if Outcome.RETRY in outcomes:
            log.warning(
                "%s; %s failed, retrying %s (each row's last_error says why)", pending, _which_try(), when
            )
        else:
            log.info("%s; %s found rows another attempt holds, looking again %s", pending, _which_try(), when)
        raise pending


def _which_try() -> str:
    """ "try 3 of 11" of the message in hand, or "a try" outside a worker."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return "a try failed"
    try:
        max_retries = message_broker().get_actor(message.actor_name).options.get("max_retries")
    except dramatiq.errors.ActorNotFound:
        max_retries = None
    tried = int(message.options.get("retries", 0)) + 1
    return f"try {tried}" + (f" of {int(max_retries) + 1}" if max_retries is not None else "")
