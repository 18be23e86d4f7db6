"""The outbox jobs a hand-off leaves for the background workers.

Written in the transaction that creates the hand-off, so a rolled-back create leaves
none and a committed one can never lose them. The commit wakes the workers' outbox
relays (a NOTIFY trigger on ``outbox``), which send them to Dramatiq: the web process
never waits on the broker. The workers (the background-work issue)
read ``outbox`` by ``actor_name``; every job's payload is
``{"handoff_id": "<uuid>", "session_id": "<uuid>"}`` and the actor reads the rest from
the database, so a job retried later sees the hand-off as it is then.

Jobs of an escalation, one row each:

``assess_handoff``
    The AI assessment: ``ai_assessment``, ``ai_assessment_data``, ``assessment_status``,
    the session's ``escalation_package.suggested_next_steps``, then the
    ``handoff_assessment_ready`` event.
``push_documentation``
    The session documentation, pushed as a note to the PSA ticket when the session has
    one (``psa_note_pushed``, ``psa_note_id``, ``psa_push_status``).
``notify_chat``
    The account's enabled Slack and Teams webhooks.
``send_escalation_emails``
    One e-mail per eligible senior of the account except the creator.
``remind_handoff``
    Sent delayed by the outbox relay, to arrive ``BATON_REMIND_AFTER_S`` after the
    hand-off: re-notifies once and raises the priority if nobody has claimed it by then.

Under an escalation policy (SPEC second edition) the chat, e-mail and reminder jobs and
the create's bell give way to the policy's tiers: ``fire_due_tiers`` wakes the tier
engine (actors/tiers/), which fires tier 0 at once and the rest when they are due.

The bell rows are not a job: they are written in the create transaction itself. A park
leaves no job: nobody is notified of a paused session, its card is in the queue.

All of a change's jobs are written by one statement (``tables.queries.outbox``).

Every create (park too) also leaves one ``announce_events`` row, payload
``{"account_id", "announcement_id", "events": [event JSON]}``: the inbox events the web
publishes right after commit. Published under once-names derived from
``announcement_id``, so when the web's own publish went through (the usual case) the
job finds them published and does nothing; when it did not (Redis restarting, the
process killed after its commit), the job is what puts them in the inbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final

import msgspec

from inbox.events import Event, encode_event
from tables import db
from tables.delivery import ANNOUNCE_EVENTS
from tables.enums import Intent
from tables.queries.handoffs import GENERATE_BRIEFING
from tables.queries.outbox import ChangeJob

ASSESS_HANDOFF: Final = "assess_handoff"
PUSH_DOCUMENTATION: Final = "push_documentation"
NOTIFY_CHAT: Final = "notify_chat"
SEND_ESCALATION_EMAILS: Final = "send_escalation_emails"
REMIND_HANDOFF: Final = "remind_handoff"
FIRE_DUE_TIERS: Final = "fire_due_tiers"
# Of a resolve (server/handoffs/resolve.py): the returned technician's e-mail, from its
# ledger row, and the outcome's note on the session's PSA ticket (actors/outcomes.py).
SEND_OUTCOME_EMAIL: Final = "send_outcome_email"
PUSH_OUTCOME_NOTE: Final = "push_outcome_note"

__all__ = [
    "ASSESS_HANDOFF",
    "FIRE_DUE_TIERS",
    "GENERATE_BRIEFING",  # written by a winning claim (tables.queries.handoffs.CLAIM_SQL)
    "JOBS_BY_INTENT",
    "NOTIFY_CHAT",
    "PUSH_DOCUMENTATION",
    "PUSH_OUTCOME_NOTE",
    "REMIND_HANDOFF",
    "SEND_ESCALATION_EMAILS",
    "SEND_OUTCOME_EMAIL",
    "announcement_job",
    "handoff_jobs",
]

JOBS_BY_INTENT: dict[Intent, tuple[str, ...]] = {
    "escalate": (ASSESS_HANDOFF, PUSH_DOCUMENTATION, NOTIFY_CHAT, SEND_ESCALATION_EMAILS, REMIND_HANDOFF),
    "park": (),
}
# An escalation under an escalation policy: its notifications are the policy's tiers,
# fired by the tier engine (actors/tiers/), which this job wakes for tier 0.
POLICY_ESCALATION_JOBS: tuple[str, ...] = (ASSESS_HANDOFF, PUSH_DOCUMENTATION, FIRE_DUE_TIERS)


def handoff_jobs(
    *, handoff_id: uuid.UUID, session_id: uuid.UUID, intent: Intent, follows_policy: bool = False
) -> list[ChangeJob]:
    """The jobs of ``intent`` for this hand-off, to write in its create transaction."""
    payload = db.dump_json({"handoff_id": str(handoff_id), "session_id": str(session_id)})
    names = POLICY_ESCALATION_JOBS if follows_policy and intent == "escalate" else JOBS_BY_INTENT[intent]
    return [ChangeJob(actor_name=actor_name, payload=payload) for actor_name in names]


def announcement_job(*, account_id: uuid.UUID, events: Sequence[Event]) -> tuple[ChangeJob, uuid.UUID]:
    """The fallback that publishes ``events``, and its announcement id, for
    ``server.handoffs.announce.announce`` after commit."""
    announcement_id = uuid.uuid4()
    payload = db.dump_json(
        {
            "account_id": str(account_id),
            "announcement_id": str(announcement_id),
            "events": [msgspec.json.decode(encode_event(event)) for event in events],
        }
    )
    return ChangeJob(actor_name=ANNOUNCE_EVENTS, payload=payload), announcement_id
