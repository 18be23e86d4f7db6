"""How a hand-off ended, told to whoever it concerns (``POST /handoffs/{id}/resolve``).

``send_outcome_email``: a ``returned`` hand-off's e-mail to the technician it went back
to. The resolve wrote its ``email`` ledger row (purpose ``outcome``) in its own
transaction; this sends that row, once (``actors/mail_batches.py``: claimed, sent,
marked), with the note.

``push_outcome_note``: the outcome as a note on the session's PSA ticket, through the
documentation's adapters (``actors/psa/``): one ``psa`` delivery (purpose ``outcome``,
the same recipient form as the documentation's), and a retried or interrupted attempt
first asks the PSA for a note carrying the outcome's own marker and adopts it. The
marker is not the documentation's and holds no part of it (the adapters find a note
by substring): neither push ever adopts the other's note.
"""

from __future__ import annotations

import logging
import uuid
from typing import Final

import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.context import HandoffContext, load
from actors.deliveries import Claim, Outcome, SendError
from actors.mail_batches import raise_if_pending, send_batch
from actors.mail_content import NO_NOTE
from actors.psa import ADAPTERS
from actors.psa.base import Note, PsaConnectionInfo
from actors.psa.push import ANSWER_SHAPE_ERRORS, MAX_ATTEMPTS, PUSH_TIME_LIMIT_MS
from actors.psa.push import CHANNEL as PSA_CHANNEL

# push's own lookup of the session's connection (scoped to the hand-off's account),
# shared rather than said twice.
from actors.psa.push import _connection as psa_connection
from actors.slots import PSA, SLOW_ACTOR_PRIORITY, in_slot
from tables.queries import deliveries as ledger

log = logging.getLogger("baton.actors.outcomes")

EMAIL_CHANNEL: Final = "email"
NOTE_TITLE_MAX_CHARS: Final = 200


def outcome_marker(handoff_id: uuid.UUID) -> str:
    """The outcome note's last line. Not ``documentation.note_marker`` plus a suffix: that
    would contain the documentation's marker, and a retried documentation push would take
    this note for its own."""
    return f"Baton outcome of hand-off {handoff_id}"


def _what_happened(ctx: HandoffContext) -> tuple[str, str]:
    """(the title's word, the outcome line) of the hand-off's outcome."""
    if ctx.resolution_outcome == "returned":
        return "Returned", f"Outcome: returned to {ctx.handed_off_by_name}"
    if ctx.resolution_outcome == "withdrawn":
        return "Withdrawn", f"Outcome: withdrawn by {ctx.handed_off_by_name} (fixed it themselves)"
    return "Resolved", "Outcome: resolved"


def outcome_note_text(ctx: HandoffContext) -> tuple[str, str]:
    """(title, text) of the PSA note of the hand-off's outcome."""
    word, outcome_line = _what_happened(ctx)
    title = f"{word}: {ctx.problem_summary or 'an active session'}"[:NOTE_TITLE_MAX_CHARS]
    lines = [
        title,
        "",
        outcome_line,
        f"By: {ctx.resolved_by_name or 'Not recorded'}",
        f"Note: {(ctx.resolution_note or '').strip() or NO_NOTE}",
        "",
        outcome_marker(ctx.handoff_id),
    ]
    return title, "\n".join(lines)


# -- the returned technician's e-mail -------------------------------------------------


@dramatiq.actor(broker=broker, queue_name="notify", max_retries=12, min_backoff=1_000, max_backoff=300_000)
async def send_outcome_email(handoff_id: str, session_id: str | None = None) -> None:
    """Outbox job of a ``returned`` resolve: its ledger row's one e-mail."""
    hid = uuid.UUID(handoff_id)
    ids = await ledger.unsent_ids(handoff_id=hid, channel=EMAIL_CHANNEL, key=ledger.OUTCOME)
    if not ids:
        return  # sent already (a repeat of the job), or nobody to tell
    outcomes = await send_batch(hid, ids, "returned")
    sent = sum(outcome is Outcome.SENT for outcome in outcomes)
    log.info("hand-off %s: %d of %d outcome e-mail(s) sent now", handoff_id, sent, len(outcomes))
    await raise_if_pending(f"outcome e-mail of hand-off {handoff_id}", ids, outcomes)


# -- the outcome's PSA note -----------------------------------------------------------


def _member(ctx: HandoffContext, connection: PsaConnectionInfo) -> str | None:
    """The PSA member of whoever resolved it, when mapped (else the integration user)."""
    member = connection.member_mapping.get(str(ctx.resolved_by))
    return None if member is None or str(member).strip() == "" else str(member)


async def push_outcome(handoff_id: uuid.UUID) -> Outcome | None:
    """Post the outcome's note unless it is already there; None when there is nothing to
    post (not resolved, or no PSA ticket and connection)."""
    ctx = await load(handoff_id)
    if ctx is None or ctx.resolution_outcome is None:
        return None
    connection = await psa_connection(ctx)
    if connection is None:
        return None
    assert ctx.psa_ticket_id is not None
    ticket_id = ctx.psa_ticket_id
    adapter = ADAPTERS[connection.kind]
    title, text = outcome_note_text(ctx)
    note = Note(
        ticket_id=ticket_id,
        title=title,
        text=text,
        marker=outcome_marker(handoff_id),
        member_id=_member(ctx, connection),
    )

    async def post_once(claim: Claim) -> None:
        if claim.attempts > 1 or claim.interrupted:
            # An earlier attempt may have stored the note before failing to hear back.
            found = await adapter.find_note(connection, ticket_id, note.marker)
            if found is not None:
                log.info("hand-off %s: outcome note %s already on the ticket", handoff_id, found)
                return
        await adapter.add_note(connection, note)

    async def send(claim: Claim) -> None:
        try:
            await post_once(claim)
        except ANSWER_SHAPE_ERRORS as exc:
            # Only the exception's name is kept: its text may quote the answer.
            raise SendError(f"{connection.kind}: unexpected answer ({type(exc).__name__})") from None

    recipient = f"{connection.kind}:{connection.id}:{ticket_id}"
    rows = await ledger.ensure_rows(
        account_id=ctx.account_id,
        handoff_id=handoff_id,
        channel=PSA_CHANNEL,
        recipients=[recipient],
        key=ledger.OUTCOME,
    )
    return await deliveries.deliver(rows[recipient], send, max_attempts=MAX_ATTEMPTS)


@dramatiq.actor(
    broker=broker,
    queue_name="psa",
    priority=SLOW_ACTOR_PRIORITY,
    max_retries=MAX_ATTEMPTS + 2,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=PUSH_TIME_LIMIT_MS,
)
async def push_outcome_note(handoff_id: str, session_id: str | None = None) -> None:
    """Outbox job of a resolve whose escalation's session has a PSA ticket."""
    hid = uuid.UUID(handoff_id)

    async def push_once() -> None:
        outcome = await push_outcome(hid)
        if outcome is not None:
            log.info("hand-off %s: outcome note %s", hid, outcome.value)
            deliveries.raise_if_pending(f"outcome note of hand-off {hid}", [outcome])

    await in_slot(PSA, push_outcome_note, {"handoff_id": handoff_id, "session_id": session_id}, push_once)
