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
import logging
import math
import uuid
from datetime import UTC, datetime, timedelta

import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.chat import headline
from actors.context import load
from actors.mail_batches import SMTP_CONNECTIONS_PER_BATCH, send_batch
from actors.mail_message import EMAIL_RECIPIENT_PREFIX
from actors.mail_transport import lease_s as email_lease_s
from settings import get_settings
from tables import db
from tables.enums import SENIOR_ROLES
from tables.queries import deliveries as ledger
from tables.queries import reminder as queries
from tables.queries.deliveries import SENT_AT_BIRTH_PREFIX
from tables.queries.recipients import reminder_recipients
from tables.states import PRIORITY_STEP_UP, REMIND, REMINDED_INTENT

log = logging.getLogger("baton.actors.reminder")

CHANNEL = "reminder"
REMINDER_KIND = "session.escalation_reminder"

# The reminder's transition, from the one state machine: which hand-offs it may remind
# (an escalation still in REMIND's source state) and the priority one step up.
(REMINDABLE_STATE,) = REMIND.sources
RAISED_PRIORITY = PRIORITY_STEP_UP


async def remind(handoff_id: uuid.UUID) -> bool:
    """Reminds once if due; True when this call did. Sends any reminder e-mails still unsent."""
    settings = get_settings()
    ctx = await load(handoff_id)
    if ctx is None or ctx.intent != REMINDED_INTENT:
        return False
    due_at = ctx.created_at + timedelta(seconds=settings.remind_after_s)
    early_s = (due_at - datetime.now(UTC)).total_seconds()
    if ctx.reminded_at is None and ctx.state == REMINDABLE_STATE and early_s > 0:
        # Arrived early (the clock of whoever sent it): come back when it is due.
        await asyncio.to_thread(
            remind_handoff.send_with_options, args=(str(handoff_id),), delay=int(early_s * 1000) + 1
        )
        return False
    reminded = False
    async with db.transaction():
        row = await queries.mark_reminded(
            handoff_id=handoff_id,
            remind_after_s=float(settings.remind_after_s),
            intent=REMINDED_INTENT,
            from_state=REMINDABLE_STATE,
            raised_priority=RAISED_PRIORITY,
        )
        if row is not None:
            reminded = True
            users = await reminder_recipients(
                account_id=row.account_id,
                target_user_id=row.target_user_id,
                roles=SENIOR_ROLES,
                creator_id=row.handed_off_by,
            )
            user_ids = [user.id for user in users]
            await queries.ring_bells(
                account_id=row.account_id,
                kind=REMINDER_KIND,
                title="Still open: " + headline(ctx),
                body=f"Nobody has picked this up yet; its priority is now {row.priority}.",
                handoff_id=handoff_id,
                session_id=row.session_id,
                user_ids=user_ids,
            )
            # A bell's row is sent at birth: its bell is written right here.
            recipients = [f"{SENT_AT_BIRTH_PREFIX}{user_id}" for user_id in user_ids]
            recipients += sorted({f"{EMAIL_RECIPIENT_PREFIX}{user.email}" for user in users if user.email})
            await ledger.insert_rows(
                account_id=row.account_id, handoff_id=handoff_id, channel=CHANNEL, recipients=recipients
            )
    if reminded:
        log.info("hand-off %s: reminded, priority raised", handoff_id)
    unsent = await ledger.unsent_ids(
        handoff_id=handoff_id, channel=CHANNEL, recipient_prefix=EMAIL_RECIPIENT_PREFIX
    )
    if unsent:
        outcomes = await send_batch(handoff_id, unsent, "reminder")
        deliveries.raise_if_pending(f"reminder e-mails of hand-off {handoff_id}", outcomes)
    return reminded


# Reminder e-mails go out over SMTP_CONNECTIONS_PER_BATCH connections, each send within
# its lease at worst (actors/mail_transport.py), plus Postgres. A backstop: a send under way is
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
