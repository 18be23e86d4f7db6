"""E-mail actors: the escalation fan-out to every eligible senior, and the batches.

SPEC "E-mail fan-out" and the seed's ``dispatch_escalation_notifications``: one message
per eligible senior of the account (owner, admin, engineer; active, not deleted) except
whoever escalated; one ``email`` delivery per address. The fan-out writes the rows and
hands them to ``send_email_batch`` messages, so every worker process shares the sending.

The rest lives by concept: what the e-mails say (``mail_content``), the message as it
leaves (``mail_message``, with ``mail_headers``), the SMTP and folder senders
(``mail_transport``), and sending rows in batches (``mail_batches``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid

import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.context import load
from actors.deliveries import Outcome
from actors.mail_batches import (
    CHANNEL,
    EMAIL_BATCH_SIZE,
    MAX_ATTEMPTS,
    SMTP_CONNECTIONS_PER_BATCH,
    batches,
    raise_if_pending,
    send_batch,
)
from actors.mail_content import MailKind
from actors.mail_transport import lease_s
from settings import get_settings
from tables.enums import SENIOR_ROLES
from tables.queries import deliveries as ledger
from tables.queries.recipients import senior_emails

log = logging.getLogger("baton.actors.email")


async def fan_out(handoff_id: uuid.UUID) -> int:
    """Write one row per recipient and hand the unsent ones to batches; returns how many."""
    ctx = await load(handoff_id)
    if ctx is None or ctx.intent != "escalate":
        return 0
    emails = await senior_emails(
        account_id=ctx.account_id, roles=SENIOR_ROLES, except_user_id=ctx.handed_off_by
    )
    if not emails:
        log.info("hand-off %s: no e-mail recipients", handoff_id)
        return 0
    await deliveries.ensure(ctx.account_id, handoff_id, CHANNEL, emails)
    unsent = [str(row_id) for row_id in await ledger.unsent_ids(handoff_id=handoff_id, channel=CHANNEL)]

    def enqueue() -> None:
        for batch in batches(unsent):
            send_email_batch.send(str(handoff_id), batch, "escalation")

    await asyncio.to_thread(enqueue)
    log.info("hand-off %s: %d e-mail(s) in %d batch(es)", handoff_id, len(unsent), len(batches(unsent)))
    return len(unsent)


# Each connection sends its share of the batch, each send (claim, SMTP, mark) within its
# lease at worst; plus room for Postgres. A backstop: the sends themselves are bounded
# by their deadline, and a send under way is recorded even when the limit cancels.
TIME_LIMIT_MARGIN_S = 60
FAN_OUT_TIME_LIMIT_MS = 60_000
EMAIL_TIME_LIMIT_MS = int(
    (math.ceil(EMAIL_BATCH_SIZE / SMTP_CONNECTIONS_PER_BATCH) * lease_s(get_settings()) + TIME_LIMIT_MARGIN_S)
    * 1000
)


@dramatiq.actor(
    broker=broker,
    queue_name="notify",
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=FAN_OUT_TIME_LIMIT_MS,
)
async def send_escalation_emails(handoff_id: str, session_id: str | None = None) -> None:
    """Outbox job of an escalation: the rows, then the batches that send them."""
    await fan_out(uuid.UUID(handoff_id))


@dramatiq.actor(
    broker=broker,
    queue_name="notify",
    max_retries=MAX_ATTEMPTS + 2,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=EMAIL_TIME_LIMIT_MS,
)
async def send_email_batch(handoff_id: str, delivery_ids: list[str], kind: MailKind = "escalation") -> None:
    ids = [uuid.UUID(i) for i in delivery_ids]
    outcomes = await send_batch(uuid.UUID(handoff_id), ids, kind)
    sent = sum(outcome is Outcome.SENT for outcome in outcomes)
    log.info("hand-off %s: %d of %d %s e-mail(s) sent now", handoff_id, sent, len(outcomes), kind)
    await raise_if_pending(f"{kind} e-mails of hand-off {handoff_id}", ids, outcomes)
