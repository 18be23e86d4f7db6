"""Push an escalation's documentation to its PSA ticket, once.

SPEC "Documentation + PSA push" and the seed's ``finalize_escalation`` / ``push_to_psa``.
The push is one ``psa`` delivery (recipient ``{kind}:{connection id}:{ticket id}``); a
retried or interrupted attempt first asks the PSA for a note carrying the hand-off's
marker and adopts it, so a crash after the PSA stored the note never posts a second.
The result is kept on the hand-off (``psa_note_pushed``, ``psa_note_id``,
``psa_push_status``, ``psa_push_error``, ``member_mapping_warning``).

``push`` runs in the worker (actor ``push_documentation``) and in the web process (the
legacy ``/escalate`` shim and ``POST /handoffs/{id}/psa-push``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

import dramatiq
import msgspec

from actors import deliveries
from actors.ai_client import call_budget_s
from actors.broker import broker
from actors.context import HandoffContext, load
from actors.deliveries import Claim, Outcome, SendError
from actors.documentation import Documentation, note_marker, render
from actors.psa import ADAPTERS
from actors.psa.base import Note, PsaConnectionInfo
from actors.slots import PSA, SLOW_ACTOR_PRIORITY, in_slot
from settings import get_settings
from tables.queries import deliveries as ledger
from tables.queries import psa_push as queries

log = logging.getLogger("baton.actors.psa")

CHANNEL = "psa"
MAX_ATTEMPTS = 8
# The note waits for the assessment this long past the hand-off's creation, at most.
ASSESSMENT_WAIT_MARGIN_S = 30.0


class PsaResult(msgspec.Struct, kw_only=True):
    psa_push_status: Literal["pushed", "failed", "no_psa"]
    psa_push_error: str | None = None
    member_mapping_warning: str | None = None
    psa_note_id: str | None = None


# What reading an answer of an unexpected shape raises (a picklist value that is no
# number, a list where an object was due); their text may quote the answer.
ANSWER_SHAPE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)


async def _connection(ctx: HandoffContext) -> PsaConnectionInfo | None:
    if not ctx.psa_ticket_id or ctx.psa_connection_id is None:
        return None
    # Scoped to the hand-off's account: a session naming another account's connection
    # is treated as having none.
    row = await queries.psa_connection(connection_id=ctx.psa_connection_id, account_id=ctx.account_id)
    if row is None or row.kind not in ADAPTERS:
        return None
    return PsaConnectionInfo(
        id=row.id,
        kind=row.kind,
        base_url=row.base_url,
        credentials=row.credentials,
        member_mapping=row.member_mapping,
    )


def member_of(ctx: HandoffContext, connection: PsaConnectionInfo) -> tuple[str | None, str | None]:
    """(the PSA member of whoever escalated, a warning when there is none)."""
    member = connection.member_mapping.get(str(ctx.handed_off_by))
    if member is None or str(member).strip() == "":
        warning = (
            f"{ctx.handed_off_by_name} has no {connection.kind} member mapped; "
            "the note is posted as the integration user."
        )
        return None, warning
    return str(member), None


async def _result(handoff_id: uuid.UUID) -> PsaResult:
    row = await queries.push_result(handoff_id=handoff_id)
    if row is None or row.psa_push_status is None:
        return PsaResult(psa_push_status="failed", psa_push_error="not pushed yet")
    return msgspec.convert(msgspec.structs.asdict(row), PsaResult)


async def push(handoff_id: uuid.UUID) -> tuple[PsaResult, Outcome | None, Documentation | None]:
    """Push the note unless it is already there; (result, delivery outcome, documentation).

    The outcome is None when there is nothing to push (no PSA, or not an escalation).
    """
    ctx = await load(handoff_id)
    if ctx is None or ctx.intent != "escalate":
        return PsaResult(psa_push_status="no_psa"), None, None
    documentation = render(ctx)
    connection = await _connection(ctx)
    if connection is None:
        await queries.record_no_psa(handoff_id=handoff_id)
        return PsaResult(psa_push_status="no_psa"), None, documentation
    assert ctx.psa_ticket_id is not None
    ticket_id = ctx.psa_ticket_id
    adapter = ADAPTERS[connection.kind]
    member_id, warning = member_of(ctx, connection)
    note = Note(
        ticket_id=ticket_id,
        title=documentation.title,
        text=documentation.text,
        marker=note_marker(handoff_id),
        member_id=member_id,
    )

    async def post_once(claim: Claim) -> None:
        note_id = None
        if claim.attempts > 1 or claim.interrupted:
            # An earlier attempt may have stored the note before failing to hear back.
            note_id = await adapter.find_note(connection, ticket_id, note.marker)
            if note_id is not None:
                log.info(
                    "hand-off %s: note %s already on %s ticket %s",
                    handoff_id,
                    note_id,
                    connection.kind,
                    ticket_id,
                )
        if note_id is None:
            note_id = await adapter.add_note(connection, note)
        # Before the delivery is marked sent: a crash in between is found by find_note.
        await queries.record_pushed(handoff_id=handoff_id, note_id=note_id, warning=warning)

    async def send(claim: Claim) -> None:
        try:
            await post_once(claim)
        except ANSWER_SHAPE_ERRORS as exc:
            # Only the exception's name is kept: its text may quote the answer.
            log.warning(
                "hand-off %s: %s reading the %s answer", handoff_id, type(exc).__name__, connection.kind
            )
            raise SendError(f"{connection.kind}: unexpected answer ({type(exc).__name__})") from None

    recipient = f"{connection.kind}:{connection.id}:{ticket_id}"
    rows = await deliveries.ensure(ctx.account_id, handoff_id, CHANNEL, [recipient])
    delivery_id = rows[recipient]
    outcome = await deliveries.deliver(delivery_id, send, max_attempts=MAX_ATTEMPTS)
    if outcome in (Outcome.RETRY, Outcome.FAILED):
        error = await ledger.last_error(delivery_id=delivery_id)
        await queries.record_failed(handoff_id=handoff_id, error=error, warning=warning)
    return await _result(handoff_id), outcome, documentation


async def repush(handoff_id: uuid.UUID) -> tuple[PsaResult, Outcome | None, Documentation | None]:
    """``POST /handoffs/{id}/psa-push``: a failed push gets a fresh set of attempts; a
    pushed note stays the one note (a second push adopts it, it never posts another)."""
    await ledger.reset_failed(handoff_id=handoff_id, channel=CHANNEL)
    return await push(handoff_id)


def assessment_deadline(ctx: HandoffContext) -> datetime:
    return ctx.created_at + timedelta(seconds=call_budget_s() + ASSESSMENT_WAIT_MARGIN_S)


# Zone lookup, picklists, token, find, post: at most this many calls at the send timeout.
PSA_CALLS_PER_PUSH_MAX = 6
TIME_LIMIT_MARGIN_S = 30
PUSH_TIME_LIMIT_MS = int(
    (PSA_CALLS_PER_PUSH_MAX * get_settings().delivery_timeout_s + TIME_LIMIT_MARGIN_S) * 1000
)


@dramatiq.actor(
    broker=broker,
    queue_name="psa",
    priority=SLOW_ACTOR_PRIORITY,
    max_retries=MAX_ATTEMPTS + 2,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=PUSH_TIME_LIMIT_MS,
)
async def push_documentation(handoff_id: str, session_id: str | None = None) -> None:
    """Outbox job of an escalation; also sent by the assessment when it is done.

    While the assessment is still being written the note waits for it (the assessment
    sends this actor again when it ends), up to a deadline after which it goes without.
    """
    hid = uuid.UUID(handoff_id)
    ctx = await load(hid)
    if ctx is None or ctx.intent != "escalate":
        return
    if ctx.assessment_status == "pending" and ctx.psa_ticket_id:
        remaining_s = (assessment_deadline(ctx) - datetime.now(UTC)).total_seconds()
        if remaining_s > 0:
            # The fallback, should the assessment's own trigger never come.
            await asyncio.to_thread(
                push_documentation.send_with_options, args=(handoff_id,), delay=int(remaining_s * 1000)
            )
            return
    if not ctx.psa_ticket_id:
        await push(hid)  # records no_psa; nothing leaves the building
        return

    async def push_once() -> None:
        result, outcome, _ = await push(hid)
        if outcome is not None:
            log.info("hand-off %s: PSA push %s (%s)", hid, result.psa_push_status, outcome.value)
            deliveries.raise_if_pending(f"PSA note of hand-off {hid}", [outcome])

    await in_slot(PSA, push_documentation, {"handoff_id": handoff_id, "session_id": session_id}, push_once)
