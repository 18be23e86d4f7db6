"""The tier engine's actors.

``fire_due_tiers``: the outbox job a create under a policy writes, so its tier 0 goes
out at once rather than on the loop's next second. ``send_tier_messages``: one tier's
e-mails and chat posts, from the ledger rows the engine wrote (each row claimed before
its send: a retry, a redelivery after a SIGKILL, or the sweep's job never sends one twice).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.chat import MAX_ATTEMPTS as CHAT_MAX_ATTEMPTS
from actors.chat import channel_message, inbox_link, post_webhook
from actors.context import load
from actors.deliveries import Claim, Outcome
from actors.email import send_email_batch
from actors.mail_batches import EMAIL_BATCH_SIZE, SMTP_CONNECTIONS_PER_BATCH, batches, send_batch
from actors.mail_content import MailKind
from actors.mail_transport import lease_s as email_lease_s
from actors.tiers.clock import clock
from actors.tiers.engine import CHAT_KINDS, fire_due
from settings import get_settings
from tables.queries import deliveries as ledger
from tables.queries import tiers
from tables.queries.chat_channels import enabled_chat_channels
from tables.tier_schedule import AT_CREATE_TIER

log = logging.getLogger("baton.tiers")


@dramatiq.actor(broker=broker, queue_name="notify", max_retries=20, min_backoff=500, max_backoff=30_000)
async def fire_due_tiers(handoff_id: str | None = None, session_id: str | None = None) -> None:
    now = clock.now()
    if handoff_id is not None and not await tiers.is_due(handoff_id=uuid.UUID(handoff_id), now=now):
        # The engine's loop (a second away at most) has fired it already, or it was
        # claimed: under load this job comes seconds after the create (the outbox relay's
        # lag; bench/tiers.py), and a whole pass for nothing cost more than it fired.
        return
    await fire_due(now)


def mail_kind(tier: int) -> MailKind:
    """Tier 0 is the escalation's e-mail; a later tier says it is still open."""
    return "escalation" if tier == AT_CREATE_TIER else "reminder"


async def _send_chat(handoff_id: uuid.UUID, key: ledger.LedgerKey) -> list[Outcome]:
    unsent = await tiers.unsent_chat_rows(handoff_id=handoff_id, key=key, kinds=CHAT_KINDS)
    if not unsent:
        # Most tiers post to no chat: the message's context (the hand-off, its session and
        # steps) is loaded only for a post to make, not for every tier's e-mails.
        return []
    ctx = await load(handoff_id)
    if ctx is None:
        return []
    channels = {
        str(channel.id): channel for channel in await enabled_chat_channels(account_id=ctx.account_id)
    }
    link = inbox_link()
    jobs = []
    for row in unsent:
        kind, row_id = row.channel, row.id
        channel = channels.get(row.recipient)
        if channel is None:
            continue  # disabled or deleted since the tier fired: nothing to post to
        body = channel_message(channel, ctx, link)

        async def send(claim: Claim, kind: str = kind, url: str = channel.url, body: Any = body) -> None:
            await post_webhook(kind, url, body)

        jobs.append(deliveries.deliver(row_id, send, max_attempts=CHAT_MAX_ATTEMPTS))
    return list(await asyncio.gather(*jobs))


async def send_tier(handoff_id: uuid.UUID, key: ledger.LedgerKey) -> list[Outcome]:
    """The tier's unsent e-mails (a batch here, more batches as their own messages) and chat posts."""
    outcomes: list[Outcome] = []
    emails = await ledger.unsent_ids(handoff_id=handoff_id, channel="email", key=key)
    if emails:
        first, *rest = batches([str(row_id) for row_id in emails], EMAIL_BATCH_SIZE)
        if rest:

            def enqueue() -> None:
                for batch in rest:
                    send_email_batch.send(str(handoff_id), batch, mail_kind(key.tier))

            await asyncio.to_thread(enqueue)
        outcomes += await send_batch(handoff_id, [uuid.UUID(i) for i in first], mail_kind(key.tier))
    outcomes += await _send_chat(handoff_id, key)
    return outcomes


# One e-mail batch over its connections and the chat posts, each within its lease.
TIME_LIMIT_MARGIN_S = 60
SEND_TIER_TIME_LIMIT_MS = int(
    (
        math.ceil(EMAIL_BATCH_SIZE / SMTP_CONNECTIONS_PER_BATCH) * email_lease_s(get_settings())
        + 2 * get_settings().delivery_timeout_s
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
    time_limit=SEND_TIER_TIME_LIMIT_MS,
)
async def send_tier_messages(handoff_id: str, release_count: int, tier: int, round: int) -> None:
    key = ledger.tier_key(release_count=release_count, tier=tier, round=round)
    outcomes = await send_tier(uuid.UUID(handoff_id), key)
    sent = sum(outcome is Outcome.SENT for outcome in outcomes)
    log.info(
        "hand-off %s: tier %d round %d: %d of %d message(s) sent now",
        handoff_id,
        tier,
        round,
        sent,
        len(outcomes),
    )
    deliveries.raise_if_pending(f"tier {tier} messages of hand-off {handoff_id}", outcomes)
