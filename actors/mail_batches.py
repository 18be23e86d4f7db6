"""Sending e-mails from their delivery rows, a batch at a time.

One ``email`` delivery per address (the ledger: ``actors/deliveries.py``). The fan-out
splits its rows into batches (``EMAIL_BATCH_SIZE``) so every worker process shares the
sending; a batch sends over a few reused connections (``SMTP_CONNECTIONS_PER_BATCH``),
each row claimed, sent within its deadline, and marked. A server that cannot be reached
costs the rest of the batch one counted attempt each, not a connection each.

Each copy carries its recipient's pick-up link when links are on (``BATON_PUBLIC_URL``):
the batch looks up, in one query, the eligible user behind each of its addresses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from actors import deliveries
from actors.context import HandoffContext, load
from actors.deliveries import Claim, Outcome
from actors.mail_content import MailKind
from actors.mail_message import Outgoing, address_of, composer
from actors.mail_transport import SmtpUnreachable, lease_s, make_sender, send_deadline_s
from pickup_links import RecipientLinks, links_on, url_prefix
from settings import Settings, get_settings
from tables.enums import SENIOR_ROLES
from tables.queries import deliveries as ledger
from tables.queries.recipients import eligible_users_at

CHANNEL = "email"
EMAIL_BATCH_SIZE = 50
SMTP_CONNECTIONS_PER_BATCH = 4
MAX_ATTEMPTS = 10
UNREACHABLE_ERROR_MAX_CHARS = 500


# The e-mails that ask for someone to pick the hand-off up (tier 0, later tiers, the
# reminder) carry the link; a returned technician's e-mail has nothing to pick up.
PICKUP_KINDS: frozenset[MailKind] = frozenset({"escalation", "reminder"})


def batches(ids: list[str], size: int = EMAIL_BATCH_SIZE) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


async def send_rows(
    delivery_ids: list[uuid.UUID],
    compose: Callable[[Claim], Outgoing],
    *,
    settings: Settings | None = None,
) -> list[Outcome]:
    """Send the rows over ``SMTP_CONNECTIONS_PER_BATCH`` connections; one outcome per row.

    When the server cannot be reached, the rows not yet tried are counted as one failed
    attempt each, without connecting again for every one of them.
    """
    settings = settings or get_settings()
    todo = list(reversed(delivery_ids))
    outcomes: list[Outcome] = []
    unreachable: list[str] = []

    async def connection_worker() -> None:
        sender = make_sender(settings)
        try:
            while todo and not unreachable:
                delivery_id = todo.pop()

                async def send(claim: Claim) -> None:
                    try:
                        await sender.send(compose(claim))
                    except SmtpUnreachable as exc:
                        unreachable.append(str(exc))
                        raise

                outcomes.append(
                    await deliveries.deliver(
                        delivery_id, send, max_attempts=MAX_ATTEMPTS, deadline_s=send_deadline_s(settings)
                    )
                )
        finally:
            await sender.close()

    await asyncio.gather(*(connection_worker() for _ in range(min(SMTP_CONNECTIONS_PER_BATCH, len(todo)))))
    if todo:
        statuses = await ledger.count_unreachable(
            delivery_ids=todo, error=unreachable[0][:UNREACHABLE_ERROR_MAX_CHARS], max_attempts=MAX_ATTEMPTS
        )
        outcomes += [Outcome.FAILED if status == "failed" else Outcome.RETRY for status in statuses]
        outcomes += [Outcome.RETRY] * (len(todo) - len(statuses))  # held elsewhere: look again later
    return outcomes


async def recipient_links(
    ctx: HandoffContext, delivery_ids: list[uuid.UUID], settings: Settings
) -> RecipientLinks | None:
    """The pick-up links of these rows: the eligible user behind each address (never the
    one who handed off); None when links are off. Two people sharing one address get one
    e-mail (``tables/queries/recipients.py``), whose link names the first senior of them."""
    if not links_on(settings):
        return None
    addresses = sorted({address_of(r).lower() for r in await ledger.recipients_of(delivery_ids=delivery_ids)})
    users = [
        user
        for user in await eligible_users_at(account_id=ctx.account_id, addresses=addresses)
        if user.id != ctx.handed_off_by
    ]
    users.sort(key=lambda u: (u.account_role not in SENIOR_ROLES, u.created_at, str(u.id)))
    user_ids: dict[str, uuid.UUID] = {}
    for user in users:
        user_ids.setdefault(user.email, user.id)
    return RecipientLinks(
        secret=settings.jwt_secret or "",
        prefix=url_prefix(settings),
        handoff_id=ctx.handoff_id,
        user_ids=user_ids,
    )


async def send_batch(handoff_id: uuid.UUID, delivery_ids: list[uuid.UUID], kind: MailKind) -> list[Outcome]:
    """The messages of ``kind`` for these rows of the hand-off, as it is now."""
    ctx = await load(handoff_id)
    if ctx is None:
        return []
    settings = get_settings()
    links = await recipient_links(ctx, delivery_ids, settings) if kind in PICKUP_KINDS else None
    return await send_rows(delivery_ids, composer(ctx, kind, settings, links), settings=settings)


async def raise_if_pending(what: str, delivery_ids: list[uuid.UUID], outcomes: list[Outcome]) -> None:
    """Retry when a send needs it; rows held by another attempt are looked at again when
    that attempt's lease runs out (a crashed worker's rows), not on the backoff."""
    retry_s = None
    if Outcome.IN_FLIGHT in outcomes:
        retry_s = await deliveries.in_flight_retry_s(delivery_ids, lease_s(get_settings()))
    deliveries.raise_if_pending(what, outcomes, in_flight_retry_s=retry_s)
