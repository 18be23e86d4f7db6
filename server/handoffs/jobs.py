"""The outbox jobs a hand-off leaves for the background workers.

Written in the transaction that creates the hand-off, so a rolled-back create leaves
none and a committed one can never lose them. The workers (the background-work issue)
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

The bell rows are not a job: they are written in the create transaction itself. A park
leaves no job: nobody is notified of a paused session, its card is in the queue.

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
from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from inbox.events import Event, encode_event
from server import db
from tables.enums import Intent

ASSESS_HANDOFF: Final = "assess_handoff"
PUSH_DOCUMENTATION: Final = "push_documentation"
NOTIFY_CHAT: Final = "notify_chat"
SEND_ESCALATION_EMAILS: Final = "send_escalation_emails"
REMIND_HANDOFF: Final = "remind_handoff"
ANNOUNCE_EVENTS: Final = "announce_events"

JOBS_BY_INTENT: dict[Intent, tuple[str, ...]] = {
    "escalate": (ASSESS_HANDOFF, PUSH_DOCUMENTATION, NOTIFY_CHAT, SEND_ESCALATION_EMAILS, REMIND_HANDOFF),
    "park": (),
}

INSERT_JOBS = """
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
SELECT gen_random_uuid(), $1, actor_name, $2::jsonb, 0, $3
FROM unnest($4::text[]) AS actor_name
RETURNING id
"""


async def enqueue_handoff_jobs(
    conn: asyncpg.Connection,
    *,
    account_id: uuid.UUID,
    handoff_id: uuid.UUID,
    session_id: uuid.UUID,
    intent: Intent,
    now: datetime,
) -> list[uuid.UUID]:
    """Writes the jobs; returns their outbox ids, for ``hand_over_jobs`` after commit."""
    jobs = JOBS_BY_INTENT[intent]
    if not jobs:
        return []
    payload = db.dump_json({"handoff_id": str(handoff_id), "session_id": str(session_id)})
    rows = await conn.fetch(INSERT_JOBS, account_id, payload, now, list(jobs))
    return [row["id"] for row in rows]


INSERT_ANNOUNCEMENT = """
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
VALUES (gen_random_uuid(), $1, $2, $3::jsonb, 0, $4)
RETURNING id
"""


async def enqueue_announcement(
    conn: asyncpg.Connection,
    *,
    account_id: uuid.UUID,
    events: Sequence[Event],
    now: datetime,
) -> tuple[uuid.UUID, uuid.UUID]:
    """Writes the fallback that publishes ``events``; (announcement id, outbox id)."""
    announcement_id = uuid.uuid4()
    payload = db.dump_json(
        {
            "account_id": str(account_id),
            "announcement_id": str(announcement_id),
            "events": [msgspec.json.decode(encode_event(event)) for event in events],
        }
    )
    outbox_id = await conn.fetchval(INSERT_ANNOUNCEMENT, account_id, ANNOUNCE_EVENTS, payload, now)
    return announcement_id, outbox_id


async def hand_over_jobs(outbox_ids: list[uuid.UUID]) -> None:
    """After commit: the jobs go to the workers now. Never raises: with Redis down the
    jobs stay in the outbox and the workers' relay sends them once it is back."""
    if outbox_ids:
        # Imported here, not at the top: actors.broker binds to REDIS_URL when imported,
        # and this module is imported before the settings are known (tests, CLI).
        from actors.outbox import hand_over

        await hand_over(outbox_ids)
