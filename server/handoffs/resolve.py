"""Resolve: how a hand-off ends (SPEC second edition, ``POST /handoffs/{id}/resolve``).

The state machine's ``RESOLVE_BY_OUTCOME`` (tables/states.py) says from which states
and by whom: ``resolved`` and ``returned`` from open or claimed, by whoever holds it or
an owner or admin; ``withdrawn`` from open, by the technician who handed it off (they
fixed it themselves). Its target, ``resolved``, is final: a claim, release or resolve
after it is 409. ``SESSION_AFTER_RESOLVE`` says what happens to the session:
``resolved`` resolves it, ``returned`` and ``withdrawn`` give it back to that
technician (``active``, ``escalated_to_id`` = them). A session that already has a newer
hand-off open or claimed is that one's, and is left alone.

One transaction: the hand-off locked first (as a claim locks it), then its session; the
resolution; the session moved; for ``returned`` the technician's bell (``session.returned``)
and the ``email`` ledger row of their e-mail with its job; the outcome's PSA note job
when the escalation's session has a ticket; the ``handoff_resolved`` announcement. After
commit the event is published (server/handoffs/announce.py), as a release's is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import asyncpg
import redis.asyncio

from inbox.events import HandoffResolved
from server.auth import UserCaller
from server.handoffs.announce import announce
from server.handoffs.jobs import PUSH_OUTCOME_NOTE, SEND_OUTCOME_EMAIL, announcement_job
from server.handoffs.read import handoff_not_found, handoff_out
from server.problems import Problem
from server.schemas.handoffs import HandoffOut, ResolveRequest
from tables import db, states
from tables.enums import HANDOFF_STATES, HandoffState, ResolveOutcome
from tables.queries import handoffs, outbox
from tables.queries import resolve as queries
from tables.queries.outbox import ChangeJob

RETURNED_KIND: Final = "session.returned"
NO_NOTE: Final = "No note given."
# Who a transition names, in the words of its refusal (403).
NOT_PERMITTED: Final[dict[states.Who, str]] = {
    states.Who.HOLDER_OR_OVERSEER: "Only whoever claimed it, or an owner or admin, can resolve or return it.",
    states.Who.CREATOR: "Only the technician who handed it off can withdraw it.",
}
# The hand-offs whose outcome goes to the PSA ticket: an escalation's ticket holds its
# documentation; a park was never documented there.
PSA_NOTED_INTENTS: Final = ("escalate",)
# A hand-off in these states (not final) still holds its session.
IN_FLIGHT: Final[tuple[HandoffState, ...]] = tuple(s for s in HANDOFF_STATES if s not in states.FINAL_STATES)


@dataclass(frozen=True, slots=True)
class Resolved:
    handoff: HandoffOut
    event: HandoffResolved
    announcement_id: uuid.UUID  # of the event's fallback outbox job


def returned_bell_title(*, resolver_name: str, problem_summary: str | None) -> str:
    return f"{resolver_name} returned to you: {problem_summary or 'an active session'}"


def _refused_state(outcome: ResolveOutcome, transition: states.HandoffTransition, state: str) -> Problem:
    if state in states.FINAL_STATES:
        detail = f"This hand-off is {state}, which is final; it can no longer be {outcome}."
        return Problem(409, detail, state=state)
    sources = " or ".join(transition.sources)
    return Problem(409, f"Only an {sources} hand-off can be {outcome}; this one is {state}.", state=state)


async def _resolve(
    conn: asyncpg.Connection, caller: UserCaller, handoff_id: uuid.UUID, request: ResolveRequest
) -> Resolved:
    held = await queries.lock_handoff(account_id=caller.account_id, handoff_id=handoff_id)
    if held is None:
        raise handoff_not_found()
    outcome = request.outcome
    transition = states.RESOLVE_BY_OUTCOME[outcome]
    if not transition.starts_from(held.state):
        raise _refused_state(outcome, transition, held.state)
    resolver = states.Caller(id=caller.id, role=caller.role)
    if not transition.permits(resolver, creator_id=held.handed_off_by, holder_id=held.claimed_by):
        raise Problem(403, NOT_PERMITTED[transition.who])
    note = (request.note or "").strip() or None

    session = await queries.lock_session(session_id=held.session_id)
    marked = await queries.mark_resolved(
        handoff_id=handoff_id,
        from_states=transition.sources,
        target=transition.target,
        outcome=outcome,
        note=note,
        resolved_by=caller.id,
    )
    assert marked, "a locked hand-off in a source state resolves"
    after = states.SESSION_AFTER_RESOLVE[outcome]
    if session.status in after.sources and not await queries.another_in_flight(
        session_id=held.session_id, handoff_id=handoff_id, states=IN_FLIGHT
    ):
        assert after.target is not None, "a resolve names the session's status"
        await queries.move_session(
            session_id=held.session_id,
            status=after.target,
            give_back_to=held.handed_off_by if after is states.RETURN_SESSION else None,
        )

    job_payload = db.dump_json({"handoff_id": str(handoff_id), "session_id": str(held.session_id)})
    jobs: list[ChangeJob] = []
    if outcome == "returned":
        jobs += await _tell_the_technician(caller, handoff_id, held, session, note, job_payload)
    if held.intent in PSA_NOTED_INTENTS and session.psa_ticket_id and session.psa_connection_id:
        jobs.append(ChangeJob(actor_name=PUSH_OUTCOME_NOTE, payload=job_payload))

    event = HandoffResolved(
        handoff_id=str(handoff_id),
        session_id=str(held.session_id),
        outcome=outcome,
        resolved_by_id=str(caller.id),
        resolved_by_name=caller.name,
    )
    # Committed with the resolve: if the publish after it cannot reach Redis, the workers do.
    announcement, announcement_id = announcement_job(account_id=caller.account_id, events=[event])
    await outbox.write_change_jobs(
        conn, account_id=caller.account_id, jobs=[*jobs, announcement], now=datetime.now(UTC)
    )
    row = await handoffs.get(account_id=caller.account_id, handoff_id=handoff_id)
    assert row is not None, "the hand-off resolved in this transaction is there"
    return Resolved(handoff_out(row), event, announcement_id)


async def _tell_the_technician(
    caller: UserCaller,
    handoff_id: uuid.UUID,
    held: queries.HeldForResolve,
    session: queries.SessionOfResolve,
    note: str | None,
    job_payload: str,
) -> list[ChangeJob]:
    """The returned technician's bell, and the ledger row and job of their e-mail, while
    they are still an eligible user (a deactivated one hears nothing)."""
    technician = held.handed_off_by
    address = await queries.eligible_email(account_id=caller.account_id, user_id=technician)
    if address is None:
        return []
    await queries.ring_outcome_bell(
        account_id=caller.account_id,
        handoff_id=handoff_id,
        session_id=held.session_id,
        user_id=technician,
        kind=RETURNED_KIND,
        title=returned_bell_title(resolver_name=caller.name, problem_summary=session.problem_summary),
        body=note or NO_NOTE,
    )
    if not address:
        return []
    await queries.write_outcome_email_row(
        account_id=caller.account_id, handoff_id=handoff_id, address=address
    )
    return [ChangeJob(actor_name=SEND_OUTCOME_EMAIL, payload=job_payload)]


async def resolve_handoff(
    *,
    caller: UserCaller,
    handoff_id: uuid.UUID,
    request: ResolveRequest,
    redis_client: redis.asyncio.Redis,
) -> HandoffOut:
    resolved = await db.in_transaction(lambda conn: _resolve(conn, caller, handoff_id, request))
    await announce(redis_client, caller.account_id, resolved.event, announcement_id=resolved.announcement_id)
    return resolved.handoff
