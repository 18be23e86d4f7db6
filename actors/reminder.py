"""The reminder: an escalation still open after ``BATON_REMIND_AFTER_S`` re-notifies once.

A delayed message (the outbox relay sends ``remind_handoff`` to arrive ``remind_after_s``
after the hand-off was created). When it arrives, one transaction checks the hand-off is
still an open, unclaimed escalation that was never reminded, sets ``reminded_at``, raises
its priority one step (low → normal → high → urgent), writes the reminder bell rows
(``session.escalation_reminder``) and one ``reminder`` delivery per bell and per e-mail
(recipients ``bell:<user id>`` / ``email:<address>``). A claim before then cancels it in
effect: the check finds the hand-off claimed. The e-mails are then sent from those rows,
so a crash after the commit loses none of them and the check keeps it to once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import uuid
from datetime import UTC, datetime, timedelta

import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.chat import headline
from actors.context import load
from actors.email import SMTP_CONNECTIONS_PER_BATCH, send_batch
from actors.email import lease_s as email_lease_s
from settings import get_settings
from tables import db
from tables.enums import PRIORITIES, SENIOR_ROLES

log = logging.getLogger("baton.actors.reminder")

CHANNEL = "reminder"
REMINDER_KIND = "session.escalation_reminder"

# One step up, capped at the top.
_NEXT_PRIORITY_SQL = (
    "CASE priority "
    + " ".join(f"WHEN '{low}' THEN '{high}'" for low, high in itertools.pairwise(PRIORITIES))
    + " ELSE priority END"
)

MARK_REMINDED = f"""
UPDATE session_handoffs
SET reminded_at = now(), priority = {_NEXT_PRIORITY_SQL}, updated_at = now()
WHERE id = $1 AND intent = 'escalate' AND state = 'open' AND claimed_by IS NULL
  AND reminded_at IS NULL AND created_at <= now() - make_interval(secs => $2)
RETURNING account_id, handed_off_by, target_user_id, session_id, priority
"""

# The target alone when the escalation named one, else every eligible senior but the creator.
RECIPIENTS = """
SELECT id, lower(email) AS email FROM users
WHERE account_id = $1 AND is_active AND deleted_at IS NULL
  AND CASE WHEN $2::uuid IS NOT NULL THEN id = $2::uuid
           ELSE account_role = ANY($3::text[]) AND id <> $4 END
"""

INSERT_BELLS = """
INSERT INTO app_notifications
    (id, account_id, user_id, kind, title, body, link, handoff_id, session_id, created_at)
SELECT gen_random_uuid(), $1, user_id, $2, $3, $4, NULL, $5, $6, now()
FROM unnest($7::uuid[]) AS user_id
"""

INSERT_ROWS = """
INSERT INTO deliveries
    (id, account_id, handoff_id, channel, recipient, status, attempts, sent_at, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, $3, recipient,
       CASE WHEN recipient LIKE 'bell:%' THEN 'sent' ELSE 'pending' END,
       CASE WHEN recipient LIKE 'bell:%' THEN 1 ELSE 0 END,
       CASE WHEN recipient LIKE 'bell:%' THEN now() END, now(), now()
FROM unnest($4::text[]) AS recipient
ON CONFLICT (handoff_id, channel, recipient) DO NOTHING
"""

UNSENT_EMAILS = """
SELECT id FROM deliveries
WHERE handoff_id = $1 AND channel = $2 AND recipient LIKE 'email:%' AND status IN ('pending', 'sending')
"""


async def remind(handoff_id: uuid.UUID) -> bool:
    """Reminds once if due; True when this call did. Sends any reminder e-mails still unsent."""
    settings = get_settings()
    ctx = await load(handoff_id)
    if ctx is None or ctx.intent != "escalate":
        return False
    due_at = ctx.created_at + timedelta(seconds=settings.remind_after_s)
    early_s = (due_at - datetime.now(UTC)).total_seconds()
    if ctx.reminded_at is None and ctx.state == "open" and early_s > 0:
        # Arrived early (the clock of whoever sent it): come back when it is due.
        await asyncio.to_thread(
            remind_handoff.send_with_options, args=(str(handoff_id),), delay=int(early_s * 1000) + 1
        )
        return False
    reminded = False
    async with db.transaction() as conn:
        row = await conn.fetchrow(MARK_REMINDED, handoff_id, float(settings.remind_after_s))
        if row is not None:
            reminded = True
            users = await conn.fetch(
                RECIPIENTS, row["account_id"], row["target_user_id"], list(SENIOR_ROLES), row["handed_off_by"]
            )
            title = "Still open: " + headline(ctx)
            body = f"Nobody has picked this up yet; its priority is now {row['priority']}."
            user_ids = [user["id"] for user in users]
            await conn.execute(
                INSERT_BELLS,
                row["account_id"],
                REMINDER_KIND,
                title,
                body,
                handoff_id,
                row["session_id"],
                user_ids,
            )
            recipients = [f"bell:{user_id}" for user_id in user_ids]
            recipients += sorted({f"email:{user['email']}" for user in users if user["email"]})
            await conn.execute(INSERT_ROWS, row["account_id"], handoff_id, CHANNEL, recipients)
    if reminded:
        log.info("hand-off %s: reminded, priority raised", handoff_id)
    unsent = [r["id"] for r in await db.fetch(UNSENT_EMAILS, handoff_id, CHANNEL)]
    if unsent:
        outcomes = await send_batch(handoff_id, unsent, "reminder")
        deliveries.raise_if_pending(f"reminder e-mails of hand-off {handoff_id}", outcomes)
    return reminded


# Reminder e-mails go out over SMTP_CONNECTIONS_PER_BATCH connections, each send within
# its lease at worst (actors/email.py), plus Postgres. A backstop: a send under way is
# recorded even when the limit cancels the actor.
SENDS_PER_RUN_MAX = 20
TIME_LIMIT_MARGIN_S = 60
REMINDER_TIME_LIMIT_MS = int(
    (
        math.ceil(SENDS_PER_RUN_MAX / SMTP_CONNECTIONS_PER_BATCH) * email_lease_s(get_settings())
        + TIME_LIMIT_MARGIN_S
    )
    * 1000
)


@dramatiq.actor(
    broker=broker,
    queue_name="notify",
    max_retries=12,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=REMINDER_TIME_LIMIT_MS,
)
async def remind_handoff(handoff_id: str, session_id: str | None = None) -> None:
    await remind(uuid.UUID(handoff_id))
