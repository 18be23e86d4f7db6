"""The deliveries ledger: claim a row before sending, mark it after.

One row per hand-off × channel × recipient (unique). A send goes through three steps:

1. ``ensure`` inserts the rows (``ON CONFLICT DO NOTHING``): a retried fan-out finds
   them instead of adding more.
2. ``claim`` moves one row ``pending -> sending`` in one conditional ``UPDATE``. Only
   one attempt can win it, so a redelivered or retried message never sends a row that
   another attempt holds or has sent.
3. The send, then ``mark_sent`` / ``mark_retry`` / ``mark_failed``.

A crash between the send and the mark leaves a row ``sending``. A row that has been
``sending`` for ``stale_after_s()`` (twice the send timeout, so no live attempt can
still be on it) is taken to be a crashed attempt and may be claimed again; the claim
records that in ``last_error`` and tells the sender (``Claim.interrupted``). What that
means per channel, the at-most-once / at-least-once choice:

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

from actors import db
from actors.metrics import count_delivery
from settings import get_settings

log = logging.getLogger("baton.deliveries")

LAST_ERROR_MAX_CHARS = 500
INTERRUPTED_PREFIX = "interrupted: "
INTERRUPTED_NOTE = INTERRUPTED_PREFIX + "a previous attempt stopped mid-send; sent again"


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


def stale_after_s() -> float:
    return 2 * get_settings().delivery_timeout_s


def _error_text(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    return text[:LAST_ERROR_MAX_CHARS]


ENSURE = """
INSERT INTO deliveries
    (id, account_id, handoff_id, channel, recipient, status, attempts, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, $3, recipient, 'pending', 0, now(), now()
FROM unnest($4::text[]) AS recipient
ON CONFLICT (handoff_id, channel, recipient) DO NOTHING
"""

ROW_IDS = """
SELECT id, recipient FROM deliveries
WHERE handoff_id = $1 AND channel = $2 AND recipient = ANY($3::text[])
"""


async def ensure(
    account_id: uuid.UUID, handoff_id: uuid.UUID, channel: str, recipients: Iterable[str]
) -> dict[str, uuid.UUID]:
    """The rows for ``recipients`` (created when missing): {recipient: delivery id}."""
    wanted = list(dict.fromkeys(recipients))
    if not wanted:
        return {}
    async with db.connection() as conn:
        await conn.execute(ENSURE, account_id, handoff_id, channel, wanted)
        rows = await conn.fetch(ROW_IDS, handoff_id, channel, wanted)
    return {row["recipient"]: row["id"] for row in rows}


# In SET, "status" and "last_error" are the values before the update: RETURNING sees the
# new ones, so the interrupted mark is how the claimer learns a crashed attempt was here.
CLAIM = f"""
UPDATE deliveries
SET status = 'sending',
    attempts = attempts + 1,
    last_error = CASE WHEN status = 'sending' THEN '{INTERRUPTED_NOTE}' ELSE last_error END,
    updated_at = now()
WHERE id = $1
  AND (status = 'pending'
       OR (status = 'sending' AND updated_at < now() - make_interval(secs => $2)))
RETURNING id, channel, recipient, attempts, last_error = '{INTERRUPTED_NOTE}' AS interrupted
"""

STATUS = "SELECT status FROM deliveries WHERE id = $1"


async def claim(delivery_id: uuid.UUID) -> Claim | Outcome:
    """Take the row for one send, or say why not (already sent, failed, in flight)."""
    async with db.connection() as conn:
        row = await conn.fetchrow(CLAIM, delivery_id, stale_after_s())
        if row is not None:
            return Claim(
                row["id"], row["recipient"], row["attempts"], bool(row["interrupted"]), row["channel"]
            )
        status = await conn.fetchval(STATUS, delivery_id)
    if status == "sent":
        return Outcome.ALREADY_SENT
    if status == "failed" or status is None:
        return Outcome.FAILED
    return Outcome.IN_FLIGHT


MARK_SENT = """
UPDATE deliveries SET status = 'sent', sent_at = now(), last_error = NULL, updated_at = now()
WHERE id = $1 AND status = 'sending'
"""

MARK_RETRY = """
UPDATE deliveries
SET status = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'pending' END,
    last_error = $2, updated_at = now()
WHERE id = $1 AND status = 'sending'
RETURNING status
"""

MARK_FAILED = """
UPDATE deliveries SET status = 'failed', last_error = $2, updated_at = now()
WHERE id = $1 AND status = 'sending'
"""


async def mark_sent(delivery_id: uuid.UUID) -> None:
    await db.execute(MARK_SENT, delivery_id)


async def mark_retry(delivery_id: uuid.UUID, error: BaseException | str, *, max_attempts: int) -> Outcome:
    """Back to ``pending`` for another try, or ``failed`` once ``max_attempts`` are spent."""
    status = await db.fetchrow(MARK_RETRY, delivery_id, _error_text(error), max_attempts)
    return Outcome.FAILED if status is not None and status["status"] == "failed" else Outcome.RETRY


async def mark_failed(delivery_id: uuid.UUID, error: BaseException | str) -> None:
    await db.execute(MARK_FAILED, delivery_id, _error_text(error))


async def deliver(
    delivery_id: uuid.UUID,
    send: Callable[[Claim], Awaitable[object]],
    *,
    max_attempts: int,
) -> Outcome:
    """Claim, send, mark: one send of one row, whatever happens to it.

    ``send`` raises ``SendError(permanent=True)`` for what no retry can fix; any other
    exception counts as transient. Never raises for a failed send, so one recipient's
    failure never stops the others.
    """
    claimed = await claim(delivery_id)
    if isinstance(claimed, Outcome):
        return claimed
    # Shielded: once a send has begun, its outcome is recorded even if the actor is
    # cancelled meanwhile (a Dramatiq time limit, a shutdown). A send the server took
    # but the ledger never marked is exactly what a later attempt would send again.
    outcome = await asyncio.shield(_send_claimed(claimed, send, max_attempts=max_attempts))
    count_delivery(claimed.channel, outcome.value)
    return outcome


async def _send_claimed(
    claimed: Claim, send: Callable[[Claim], Awaitable[object]], *, max_attempts: int
) -> Outcome:
    try:
        await send(claimed)
    except SendError as exc:
        if exc.permanent:
            await mark_failed(claimed.id, exc)
            return Outcome.FAILED
        return await mark_retry(claimed.id, exc, max_attempts=max_attempts)
    except Exception as exc:
        return await mark_retry(claimed.id, exc, max_attempts=max_attempts)
    await mark_sent(claimed.id)
    return Outcome.SENT


class DeliveriesPending(dramatiq.Retry):
    """Some sends of a message failed for now or are held elsewhere: Dramatiq retries it
    with the actor's backoff. A ``Retry``, so the expected case is a warning line of ours
    rather than Dramatiq's error traceback; ``last_error`` on each row says why."""

    def __init__(self, what: str, outcomes: Iterable[Outcome]) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.value] = counts.get(outcome.value, 0) + 1
        summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        super().__init__(f"{what}: {summary}")


def raise_if_pending(what: str, outcomes: list[Outcome]) -> None:
    if any(outcome.needs_retry for outcome in outcomes):
        pending = DeliveriesPending(what, outcomes)
        log.warning("%s; retrying with backoff", pending)
        raise pending
