"""Park or escalate a session: the click path, one transaction, no AI and no network.

In order, inside one transaction (SPEC "Creating a hand-off"): lock the session row,
check every rule (the state machine's, tables/states.py), build the snapshot, supersede
an open park when a parked session is escalated, insert the hand-off and update the
session (status, ``handoff_count``, the dual-written ``escalation_package``) in one
statement, ring the bell and write the outbox jobs (the statements:
tables/queries/handoff_create.py). After commit, and
only then, the inbox hears ``handoff_created`` (and ``handoff_superseded``), and the
workers' relays, woken by the commit's NOTIFY, send the jobs (actors/outbox.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import redis.asyncio

from inbox.events import Event, HandoffCreated, HandoffSuperseded
from server.auth import UserCaller
from server.handoffs import idempotency
from server.handoffs.announce import announce
from server.handoffs.bell import ring_escalation_bell
from server.handoffs.jobs import announcement_job, handoff_jobs
from server.handoffs.sla import sla_of
from server.handoffs.snapshot import build_snapshot
from server.problems import Problem
from server.schemas.handoffs import Assessment, HandoffCreate, HandoffOut, Person, PsaNote
from tables import db, states, tier_schedule
from tables.enums import Intent, SessionStatus
from tables.policy_shapes import PolicyCopy
from tables.queries import handoff_create, outbox
from tables.queries.handoff_create import ExistingHandoff, LockedSession, NewHandoff, SessionAfterCreate

SELF_ESCALATION = "Cannot escalate a session to yourself. Use pause instead."

ONE_OPEN_INDEX = "session_handoffs_one_open_per_session"
IDEMPOTENCY_INDEX = "session_handoffs_idempotency_key"


@dataclass(frozen=True, slots=True)
class Created:
    handoff: HandoffOut
    replayed: bool  # True: the answer of an earlier request with the same Idempotency-Key


@dataclass(frozen=True, slots=True)
class Committed:
    created: Created
    events: tuple[Event, ...] = ()
    announcement_id: uuid.UUID | None = None  # of the events' fallback outbox job


def _session_not_found() -> Problem:
    return Problem(404, "Session not found.")


def _open_handoff_conflict(detail: str, open_handoff_id: uuid.UUID) -> Problem:
    return Problem(409, detail, open_handoff_id=str(open_handoff_id))


def _check_transition(intent: Intent, status: str, open_handoff: ExistingHandoff | None) -> uuid.UUID | None:
    """The id of the open hand-off to supersede, if any; 409 when the state machine
    (tables/states.py) refuses."""
    if not states.may_hand_off(intent, status):
        detail = f"Cannot {intent} session in status: {status}"
        if open_handoff is not None:
            raise _open_handoff_conflict(detail, open_handoff.id)
        raise Problem(409, detail)
    if open_handoff is None:
        return None
    if states.supersedes(intent, status, open_handoff.intent):
        return open_handoff.id
    raise _open_handoff_conflict("This session already has an open hand-off.", open_handoff.id)


@dataclass(frozen=True, slots=True)
class PolicyClock:
    """The escalation policy a create copies onto its hand-off, and its first schedule."""

    policy: PolicyCopy
    tier_0: tier_schedule.Due
    claim_due_at: datetime | None


def _policy_clock(intent: Intent, session: LockedSession, priority: str) -> PolicyClock | None:
    """None for a park, and for an escalation under the built-in default (no policy)."""
    if intent != "escalate" or session.policy is None:
        return None
    policy = msgspec.json.decode(session.policy, type=PolicyCopy)
    return PolicyClock(
        policy=policy,
        tier_0=tier_schedule.at_create(session.now),
        claim_due_at=tier_schedule.claim_due_at(policy, priority, session.now),
    )


def _new_handoff(
    *,
    handoff_id: uuid.UUID,
    caller: UserCaller,
    session: LockedSession,
    request: HandoffCreate,
    snapshot: dict[str, Any],
    clock: PolicyClock | None,
) -> HandoffOut:
    """The answer, built before the insert so the row can keep it for replays."""
    return HandoffOut(
        id=handoff_id,
        session_id=session.id,
        intent=request.intent,
        state="open",
        priority=request.priority,
        engineer_notes=request.engineer_notes,
        snapshot=snapshot,
        source_branch_id=session.active_branch_id,
        target_user_id=request.target_user_id,
        handed_off_by=Person(id=caller.id, name=caller.name),
        claimed_by=None,
        claimed_at=None,
        created_at=session.now,
        assessment=Assessment(status="pending" if request.intent == "escalate" else "not_applicable"),
        psa=PsaNote(),
        sla=sla_of(
            intent=request.intent,
            created_at=session.now,
            policy_id=None if clock is None else clock.policy.id,
            claim_due_at=None if clock is None else clock.claim_due_at,
            breached_at=None,
            last_tier=None,
            reminded_at=None,
        ),
    )


async def create_in_transaction(
    conn: asyncpg.Connection,
    *,
    caller: UserCaller,
    session_id: uuid.UUID,
    request: HandoffCreate,
    idempotency_key: str | None,
    request_fingerprint: str | None,
    bell_link: str | None,
) -> Committed:
    """Everything between BEGIN and COMMIT, on ``conn`` (which holds the transaction).

    Returns the answer and the events to publish once committed. Public for the
    benchmark, which runs these statements on a bare asyncpg pool to price the API.
    """
    target = request.target_user_id
    session = await handoff_create.lock_session(
        conn, session_id=session_id, account_id=caller.account_id, target_user_id=target
    )
    if session is None:
        raise _session_not_found()
    now = session.now

    open_handoff = None
    existing = await handoff_create.open_or_same_key(
        conn, session_id=session_id, account_id=caller.account_id, idempotency_key=idempotency_key
    )
    for row in existing:
        if idempotency_key is not None and row.idempotency_key == idempotency_key:
            assert request_fingerprint is not None
            return Committed(Created(idempotency.replay(row, request_fingerprint), replayed=True))
        open_handoff = row
    superseded_id = _check_transition(request.intent, session.status, open_handoff)

    if not session.target_eligible:
        raise Problem(422, "target_user_id is not an active user of this account.")

    snapshot = await build_snapshot(conn, session)
    clock = _policy_clock(request.intent, session, request.priority)
    handoff = _new_handoff(
        handoff_id=uuid.uuid4(),
        caller=caller,
        session=session,
        request=request,
        snapshot=snapshot,
        clock=clock,
    )
    if superseded_id is not None:
        # Before the insert: the one-open-per-session index must already be free.
        await handoff_create.supersede(conn, handoff_id=superseded_id, now=now)
    escalates = request.intent == "escalate"
    await handoff_create.insert_handoff(
        conn,
        handoff=NewHandoff(
            id=handoff.id,
            session_id=session_id,
            account_id=caller.account_id,
            team_id=session.team_id,
            handed_off_by=caller.id,
            intent=request.intent,
            source_branch_id=handoff.source_branch_id,
            snapshot=db.dump_json(snapshot),
            assessment_status=handoff.assessment.status,
            engineer_notes=request.engineer_notes,
            priority=request.priority,
            target_user_id=target,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
            response=idempotency.response_json(handoff) if idempotency_key is not None else None,
            created_at=now,
            **_schedule_columns(clock),
        ),
        session=SessionAfterCreate(
            status=_status_after(request.intent),
            escalation_package=db.dump_json(
                {
                    "snapshot": snapshot,
                    "intent": request.intent,
                    "engineer_notes": request.engineer_notes,
                    "handoff_id": str(handoff.id),
                }
            ),
            sets_escalation=escalates,
            escalation_reason=request.engineer_notes,
            escalated_to_id=target,
        ),
    )
    if escalates and clock is None:
        # The built-in default's tier 0. A policy's tier 0 is the tier engine's, which the
        # commit wakes (its job below): its recipients and channels are the policy's.
        await ring_escalation_bell(
            conn,
            account_id=caller.account_id,
            handoff_id=handoff.id,
            session_id=session_id,
            creator_id=caller.id,
            creator_name=caller.name,
            target_user_id=target,
            problem_summary=session.problem_summary,
            psa_ticket_id=session.psa_ticket_id,
            engineer_notes=request.engineer_notes,
            link=bell_link,
            now=now,
        )

    events: list[Event] = []
    if superseded_id is not None:
        events.append(
            HandoffSuperseded(
                handoff_id=str(superseded_id), session_id=str(session_id), superseded_by=str(handoff.id)
            )
        )
    events.append(
        HandoffCreated(
            handoff_id=str(handoff.id),
            session_id=str(session_id),
            intent=request.intent,
            priority=request.priority,
            engineer_notes=request.engineer_notes,
            problem_summary=session.problem_summary,
            created_at=db.iso(now),
        )
    )
    announcement, announcement_id = announcement_job(account_id=caller.account_id, events=events)
    # The jobs and the events' fallback in one statement.
    jobs = [
        *handoff_jobs(
            handoff_id=handoff.id,
            session_id=session_id,
            intent=request.intent,
            follows_policy=clock is not None,
        ),
        announcement,
    ]
    await outbox.write_change_jobs(conn, account_id=caller.account_id, jobs=jobs, now=now)
    return Committed(Created(handoff, replayed=False), tuple(events), announcement_id)


def _schedule_columns(clock: PolicyClock | None) -> dict[str, Any]:
    if clock is None:
        return {}
    return {
        "policy": db.dump_json(clock.policy),
        "policy_id": clock.policy.id,
        "tier_next": clock.tier_0.tier,
        "tier_due_at": clock.tier_0.at,
        "claim_due_at": clock.claim_due_at,
    }


def _status_after(intent: Intent) -> SessionStatus:
    target = states.SESSION_AFTER_CREATE[intent].target
    assert target is not None, "a create names the status it leaves"
    return target


async def _answer_unique_violation(
    exc: asyncpg.UniqueViolationError,
    *,
    caller: UserCaller,
    session_id: uuid.UUID,
    idempotency_key: str | None,
    request_fingerprint: str | None,
) -> Created:
    """A concurrent create won the race the index referees; answer as if we came second."""
    async with db.connection() as conn:
        if exc.constraint_name == IDEMPOTENCY_INDEX and idempotency_key is not None:
            for row in await handoff_create.open_or_same_key(
                conn, session_id=None, account_id=caller.account_id, idempotency_key=idempotency_key
            ):
                assert request_fingerprint is not None
                return Created(idempotency.replay(row, request_fingerprint), replayed=True)
        if exc.constraint_name == ONE_OPEN_INDEX:
            for row in await handoff_create.open_or_same_key(
                conn, session_id=session_id, account_id=caller.account_id, idempotency_key=None
            ):
                raise _open_handoff_conflict("This session already has an open hand-off.", row.id)
    raise exc


async def create_handoff(
    *,
    caller: UserCaller,
    session_id: uuid.UUID,
    request: HandoffCreate,
    idempotency_key: str | None,
    redis_client: redis.asyncio.Redis,
    frontend_url: str | None,
) -> Created:
    """Park or escalate ``session_id`` for ``caller``; see the module docstring."""
    if request.intent == "escalate" and request.target_user_id == caller.id:
        raise Problem(422, SELF_ESCALATION)
    request_fingerprint = (
        None
        if idempotency_key is None
        else idempotency.fingerprint(session_id=session_id, user_id=caller.id, request=request)
    )
    bell_link = f"{frontend_url.rstrip('/')}/escalations" if frontend_url else None
    try:
        # Retried as a deadlock victim: escalating a parked session locks the session,
        # then its park; claiming that park locks them the other way round.
        committed = await db.in_transaction(
            lambda conn: create_in_transaction(
                conn,
                caller=caller,
                session_id=session_id,
                request=request,
                idempotency_key=idempotency_key,
                request_fingerprint=request_fingerprint,
                bell_link=bell_link,
            )
        )
    except asyncpg.UniqueViolationError as exc:
        return await _answer_unique_violation(
            exc,
            caller=caller,
            session_id=session_id,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
        )
    # The jobs need no hand-over: the commit NOTIFYs the workers' outbox relays.
    await announce(
        redis_client, caller.account_id, *committed.events, announcement_id=committed.announcement_id
    )
    return committed.created
