"""Park or escalate a session: the click path, one transaction, no AI and no network.

In order, inside one transaction (SPEC "Creating a hand-off"): lock the session row,
check every rule, build the snapshot, insert the hand-off, update the session (status,
``handoff_count``, the dual-written ``escalation_package``), supersede an open park when
a parked session is escalated, ring the bell and write the outbox jobs. After commit, and
only then, the inbox hears ``handoff_created`` (and ``handoff_superseded``), and the
workers' relays, woken by the commit's NOTIFY, send the jobs (actors/outbox.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio

from inbox.events import Event, HandoffCreated, HandoffSuperseded
from server.auth import UserCaller
from server.handoffs import idempotency
from server.handoffs.announce import announce
from server.handoffs.bell import ring_escalation_bell
from server.handoffs.jobs import enqueue_announcement, enqueue_handoff_jobs
from server.handoffs.snapshot import build_snapshot
from server.problems import Problem
from server.schemas.handoffs import Assessment, HandoffCreate, HandoffOut, Person, PsaNote
from tables import db

SELF_ESCALATION = "Cannot escalate a session to yourself. Use pause instead."
# Statuses each intent may start from (SPEC "Session and hand-off states").
ALLOWED_FROM = {"escalate": ("active", "paused"), "park": ("active",)}
STATUS_AFTER = {"escalate": "escalated", "park": "paused"}

LOCK_SESSION = """
SELECT id, status, team_id, problem_summary, problem_domain, step_count, confidence_tier,
       is_branching, active_branch_id, psa_ticket_id, now() AS now
FROM ai_sessions
WHERE id = $1 AND account_id = $2
FOR UPDATE
"""

# Its own statement, after the lock: a statement's snapshot is taken before it waits for
# a lock, so only a later statement sees what the previous holder of the lock committed.
OPEN_OR_SAME_KEY = """
SELECT id, intent, idempotency_key, request_fingerprint, response
FROM session_handoffs
WHERE (session_id = $1 AND state = 'open')
   OR (account_id = $2 AND idempotency_key = $3)
"""

ELIGIBLE_USER = """
SELECT EXISTS (
    SELECT 1 FROM users
    WHERE id = $1 AND account_id = $2 AND is_active AND deleted_at IS NULL
)
"""

SUPERSEDE = "UPDATE session_handoffs SET state = 'superseded', updated_at = $2 WHERE id = $1"

INSERT_HANDOFF = """
INSERT INTO session_handoffs (
    id, session_id, account_id, team_id, handed_off_by, intent, state, source_branch_id,
    snapshot, assessment_status, engineer_notes, priority, target_user_id,
    idempotency_key, request_fingerprint, response, created_at, updated_at
) VALUES (
    $1, $2, $3, $4, $5, $6, 'open', $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $16
)
"""

PARK_SESSION = """
UPDATE ai_sessions
SET status = 'paused', handoff_count = handoff_count + 1, escalation_package = $2::jsonb,
    updated_at = $3
WHERE id = $1
"""

ESCALATE_SESSION = """
UPDATE ai_sessions
SET status = 'escalated', handoff_count = handoff_count + 1, escalation_package = $2::jsonb,
    escalation_reason = $4, escalated_to_id = $5, updated_at = $3
WHERE id = $1
"""

FIND_OPEN = "SELECT id FROM session_handoffs WHERE session_id = $1 AND state = 'open'"

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


def _check_transition(intent: str, status: str, open_handoff: Mapping[str, Any] | None) -> uuid.UUID | None:
    """The id of the open park to supersede, if any; 409 when the rules refuse."""
    if status not in ALLOWED_FROM[intent]:
        detail = f"Cannot {intent} session in status: {status}"
        if open_handoff is not None:
            raise _open_handoff_conflict(detail, open_handoff["id"])
        raise Problem(409, detail)
    if open_handoff is None:
        return None
    if intent == "escalate" and status == "paused" and open_handoff["intent"] == "park":
        return uuid.UUID(str(open_handoff["id"]))
    raise _open_handoff_conflict("This session already has an open hand-off.", open_handoff["id"])


def _new_handoff(
    *,
    handoff_id: uuid.UUID,
    caller: UserCaller,
    session: Mapping[str, Any],
    request: HandoffCreate,
    snapshot: dict[str, Any],
) -> HandoffOut:
    """The answer, built before the insert so the row can keep it for replays."""
    return HandoffOut(
        id=handoff_id,
        session_id=session["id"],
        intent=request.intent,
        state="open",
        priority=request.priority,
        engineer_notes=request.engineer_notes,
        snapshot=snapshot,
        source_branch_id=session["active_branch_id"],
        target_user_id=request.target_user_id,
        handed_off_by=Person(id=caller.id, name=caller.name),
        claimed_by=None,
        claimed_at=None,
        created_at=session["now"],
        assessment=Assessment(status="pending" if request.intent == "escalate" else "not_applicable"),
        psa=PsaNote(),
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
    session = await conn.fetchrow(LOCK_SESSION, session_id, caller.account_id)
    if session is None:
        raise _session_not_found()
    now: datetime = session["now"]

    open_handoff = None
    for row in await conn.fetch(OPEN_OR_SAME_KEY, session_id, caller.account_id, idempotency_key):
        if idempotency_key is not None and row["idempotency_key"] == idempotency_key:
            assert request_fingerprint is not None
            return Committed(Created(idempotency.replay(row, request_fingerprint), replayed=True))
        open_handoff = row
    superseded_id = _check_transition(request.intent, session["status"], open_handoff)

    target = request.target_user_id
    if target is not None and not await conn.fetchval(ELIGIBLE_USER, target, caller.account_id):
        raise Problem(422, "target_user_id is not an active user of this account.")

    snapshot = await build_snapshot(conn, session)
    handoff = _new_handoff(
        handoff_id=uuid.uuid4(), caller=caller, session=session, request=request, snapshot=snapshot
    )
    if superseded_id is not None:
        # Before the insert: the one-open-per-session index must already be free.
        await conn.execute(SUPERSEDE, superseded_id, now)
    await conn.execute(
        INSERT_HANDOFF,
        handoff.id,
        session_id,
        caller.account_id,
        session["team_id"],
        caller.id,
        request.intent,
        handoff.source_branch_id,
        db.dump_json(snapshot),
        handoff.assessment.status,
        request.engineer_notes,
        request.priority,
        target,
        idempotency_key,
        request_fingerprint,
        idempotency.response_json(handoff) if idempotency_key is not None else None,
        now,
    )
    package = db.dump_json(
        {
            "snapshot": snapshot,
            "intent": request.intent,
            "engineer_notes": request.engineer_notes,
            "handoff_id": str(handoff.id),
        }
    )
    if request.intent == "escalate":
        await conn.execute(ESCALATE_SESSION, session_id, package, now, request.engineer_notes, target)
        await ring_escalation_bell(
            conn,
            account_id=caller.account_id,
            handoff_id=handoff.id,
            session_id=session_id,
            creator_id=caller.id,
            creator_name=caller.name,
            target_user_id=target,
            problem_summary=session["problem_summary"],
            psa_ticket_id=session["psa_ticket_id"],
            engineer_notes=request.engineer_notes,
            link=bell_link,
            now=now,
        )
    else:
        await conn.execute(PARK_SESSION, session_id, package, now)
    await enqueue_handoff_jobs(
        conn,
        account_id=caller.account_id,
        handoff_id=handoff.id,
        session_id=session_id,
        intent=request.intent,
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
            problem_summary=session["problem_summary"],
            created_at=db.iso(now),
        )
    )
    announcement_id = await enqueue_announcement(conn, account_id=caller.account_id, events=events, now=now)
    return Committed(Created(handoff, replayed=False), tuple(events), announcement_id)


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
            row = await conn.fetchrow(idempotency.FIND_BY_KEY, caller.account_id, idempotency_key)
            if row is not None:
                assert request_fingerprint is not None
                return Created(idempotency.replay(row, request_fingerprint), replayed=True)
        if exc.constraint_name == ONE_OPEN_INDEX:
            open_id = await conn.fetchval(FIND_OPEN, session_id)
            if open_id is not None:
                raise _open_handoff_conflict("This session already has an open hand-off.", open_id)
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
