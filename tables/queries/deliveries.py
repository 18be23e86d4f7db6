"""The deliveries ledger's statements (``tables.delivery.Delivery``): rows, claims, marks.

The policy (what a claim, a lease, an interrupted attempt mean) is ``actors/deliveries.py``;
this module says it to Postgres. Every timestamp is the database's (``clock``): a lease
is compared against ``updated_at`` written by other processes. Updates pass
``use_auto_update=False`` and set ``updated_at`` themselves: Piccolo's ``Table.update``
would otherwise set it from this process's clock, over the value given.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from piccolo.columns.combination import And, WhereRaw
from piccolo.query.functions import Case, Min, When
from piccolo.querystring import QueryString

from tables import db
from tables.delivery import Delivery
from tables.queries.clock import now, seconds_ago
from tables.queries.insert_parts import parts

INTERRUPTED_PREFIX = "interrupted: "
INTERRUPTED_NOTE = INTERRUPTED_PREFIX + "a previous attempt stopped mid-send; sent again"
# Sent at birth: the channels whose row is itself the record of a send done in the
# transaction that wrote it (the reminder's bell rows).
SENT_AT_BIRTH_PREFIX = "bell:"


class LedgerKey(msgspec.Struct, frozen=True, kw_only=True):
    """Which message of a hand-off a row belongs to, besides its channel and recipient
    (the ledger's key: tables/delivery.py). ``NOTIFY``: the first edition's messages."""

    purpose: str = "notify"
    release_count: int = 0
    tier: int = 0
    round: int = 1

    def where(self) -> And:
        return And(
            And(Delivery.purpose == self.purpose, Delivery.release_count == self.release_count),
            And(Delivery.tier == self.tier, Delivery.round == self.round),
        )


NOTIFY = LedgerKey()
TIER_PURPOSE = "tier"


def tier_key(*, release_count: int, tier: int, round: int) -> LedgerKey:
    return LedgerKey(purpose=TIER_PURPOSE, release_count=release_count, tier=tier, round=round)


# How a hand-off ended (POST /handoffs/{id}/resolve): the returned technician's bell and
# e-mail, the outcome's PSA note. ``resolved`` is final, so a hand-off has one outcome.
OUTCOME_PURPOSE = "outcome"
OUTCOME = LedgerKey(purpose=OUTCOME_PURPOSE)


LEDGER_KEY_COLUMNS = (
    Delivery.handoff_id,
    Delivery.purpose,
    Delivery.release_count,
    Delivery.tier,
    Delivery.round,
    Delivery.channel,
    Delivery.recipient,
)


class ClaimedRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    channel: str
    recipient: str
    attempts: int
    last_error: str | None

    @property
    def interrupted(self) -> bool:
        """A crashed attempt held the row before this claim (``claim_row`` says so here)."""
        return self.last_error == INTERRUPTED_NOTE


class RowState(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    attempts: int


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A row as ``GET /handoffs/{id}/deliveries`` lists it."""

    id: uuid.UUID
    channel: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    purpose: str
    release_count: int
    tier: int
    round: int


class StuckRows(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    handoff_id: uuid.UUID
    channel: str
    purpose: str
    release_count: int
    tier: int
    round: int


def _any_id(ids: list[uuid.UUID]) -> WhereRaw:
    # One array parameter: ``is_in`` would send a parameter per id (200 in a relay batch)
    # and Piccolo warns past 100.
    return WhereRaw('"id" = ANY({}::uuid[])', ids)


async def ensure_rows(
    *,
    account_id: uuid.UUID,
    handoff_id: uuid.UUID,
    channel: str,
    recipients: list[str],
    key: LedgerKey = NOTIFY,
) -> dict[str, uuid.UUID]:
    """The rows for ``recipients`` (created ``pending`` when missing): {recipient: id}.

    Unique on the ledger's key with ``ON CONFLICT DO NOTHING``: a retried fan-out finds
    its rows instead of adding more."""
    if not recipients:
        return {}
    await insert_rows(
        account_id=account_id, handoff_id=handoff_id, channel=channel, recipients=recipients, key=key
    )
    rows = await db.run(
        Delivery.select(Delivery.id, Delivery.recipient).where(
            Delivery.handoff_id == handoff_id,
            key.where(),
            Delivery.channel == channel,
            WhereRaw('"recipient" = ANY({}::text[])', recipients),
        )
    )
    return {row["recipient"]: row["id"] for row in rows}


async def insert_rows(
    *,
    account_id: uuid.UUID,
    handoff_id: uuid.UUID,
    channel: str,
    recipients: list[str],
    key: LedgerKey = NOTIFY,
) -> None:
    """The missing rows of ``recipients``; a ``bell:`` recipient's row is ``sent`` at birth
    (its bell row is written in the same transaction). On the current transaction when
    there is one."""
    if not recipients:
        return

    def row(recipient: str) -> Delivery:
        sent = recipient.startswith(SENT_AT_BIRTH_PREFIX)
        return Delivery(
            account_id=account_id,
            handoff_id=handoff_id,
            channel=channel,
            recipient=recipient,
            purpose=key.purpose,
            release_count=key.release_count,
            tier=key.tier,
            round=key.round,
            status="sent" if sent else "pending",
            attempts=1 if sent else 0,
            sent_at=now() if sent else None,
            created_at=now(),
            updated_at=now(),
        )

    for part in parts(list(dict.fromkeys(recipients))):
        await db.run(
            Delivery.insert(*(row(recipient) for recipient in part)).on_conflict(
                target=LEDGER_KEY_COLUMNS, action="DO NOTHING"
            )
        )


async def claim_row(*, delivery_id: uuid.UUID, lease_s: float) -> ClaimedRow | None:
    """``pending -> sending`` (or a ``sending`` row held past ``lease_s``: a crashed
    attempt's), ``attempts + 1``: one conditional UPDATE, so one claimer wins. None when
    the row is not to be claimed now."""
    rows = await db.run(
        Delivery.update(
            {
                Delivery.status: "sending",
                Delivery.attempts: Delivery.attempts + 1,
                # In SET, ``status`` is the value before the update while RETURNING sees
                # the new one: this note is how the claimer learns a crashed attempt was here.
                Delivery.last_error: Case(
                    When(Delivery.status == "sending", then=INTERRUPTED_NOTE), default=Delivery.last_error
                ),
                Delivery.updated_at: now(),
            },
            use_auto_update=False,
        )
        .where(
            Delivery.id == delivery_id,
            (Delivery.status == "pending")
            | ((Delivery.status == "sending") & (Delivery.updated_at < seconds_ago(lease_s))),
        )
        .returning(Delivery.id, Delivery.channel, Delivery.recipient, Delivery.attempts, Delivery.last_error)
    )
    return msgspec.convert(rows[0], ClaimedRow) if rows else None


async def row_state(*, delivery_id: uuid.UUID) -> RowState | None:
    rows = await db.run(Delivery.select(Delivery.status, Delivery.attempts).where(Delivery.id == delivery_id))
    return msgspec.convert(rows[0], RowState) if rows else None


def _held_by(delivery_id: uuid.UUID, attempt: int) -> And:
    """A mark applies only while the row is still this attempt's claim: a row reclaimed
    meanwhile belongs to the later attempt."""
    return (Delivery.id == delivery_id) & (Delivery.status == "sending") & (Delivery.attempts == attempt)


async def mark_sent(*, delivery_id: uuid.UUID, attempt: int) -> bool:
    """``sent``; False when the row is no longer this attempt's claim.

    A row taken over from a crashed attempt keeps that note once sent: its recipient may
    have got two copies, and the audit trail says why. Not a PSA note: an interrupted
    push adopts the note the PSA already holds instead of posting another."""
    rows = await db.run(
        Delivery.update(
            {
                Delivery.status: "sent",
                Delivery.sent_at: now(),
                Delivery.updated_at: now(),
                Delivery.last_error: Case(
                    When(
                        (Delivery.last_error == INTERRUPTED_NOTE) & (Delivery.channel != "psa"),
                        then=Delivery.last_error,
                    )
                ),
            },
            use_auto_update=False,
        )
        .where(_held_by(delivery_id, attempt))
        .returning(Delivery.status)
    )
    return bool(rows)


async def mark_retry(*, delivery_id: uuid.UUID, attempt: int, error: str, max_attempts: int) -> str | None:
    """Back to ``pending``, or ``failed`` once ``max_attempts`` are spent: the new status,
    or None when the row is no longer this attempt's claim."""
    rows = await db.run(
        Delivery.update(
            {
                Delivery.status: Case(
                    When(Delivery.attempts >= max_attempts, then="failed"), default="pending"
                ),
                Delivery.last_error: error,
                Delivery.updated_at: now(),
            },
            use_auto_update=False,
        )
        .where(_held_by(delivery_id, attempt))
        .returning(Delivery.status)
    )
    return str(rows[0]["status"]) if rows else None


async def mark_failed(*, delivery_id: uuid.UUID, attempt: int, error: str) -> bool:
    rows = await db.run(
        Delivery.update(
            {Delivery.status: "failed", Delivery.last_error: error, Delivery.updated_at: now()},
            use_auto_update=False,
        )
        .where(_held_by(delivery_id, attempt))
        .returning(Delivery.status)
    )
    return bool(rows)


async def count_unreachable(*, delivery_ids: list[uuid.UUID], error: str, max_attempts: int) -> list[str]:
    """One failed attempt for each ``pending`` row of ``delivery_ids`` (the server could
    not be reached), ``failed`` once ``max_attempts`` are spent: their new statuses."""
    if not delivery_ids:
        return []
    rows = await db.run(
        Delivery.update(
            {
                Delivery.attempts: Delivery.attempts + 1,
                Delivery.last_error: error,
                Delivery.updated_at: now(),
                Delivery.status: Case(
                    When(Delivery.attempts + 1 >= max_attempts, then="failed"),
                    default="pending",
                ),
            },
            use_auto_update=False,
        )
        .where(_any_id(delivery_ids), Delivery.status == "pending")
        .returning(Delivery.status)
    )
    return [str(row["status"]) for row in rows]


async def lease_left_s(*, delivery_ids: list[uuid.UUID], lease_s: float) -> float | None:
    """Seconds until the oldest ``sending`` row of ``delivery_ids`` outlives ``lease_s``
    (negative: already has); None when none is ``sending``."""
    rows = await db.run(
        Delivery.select(Min(Delivery.updated_at, alias="oldest"), QueryString("now()", alias="now")).where(
            WhereRaw('"id" = ANY({}::uuid[])', delivery_ids), Delivery.status == "sending"
        )
    )
    if not rows or rows[0]["oldest"] is None:
        return None
    return float(lease_s - (rows[0]["now"] - rows[0]["oldest"]).total_seconds())


async def unsent_ids(
    *, handoff_id: uuid.UUID, channel: str, recipient_prefix: str | None = None, key: LedgerKey = NOTIFY
) -> list[uuid.UUID]:
    """The rows of a hand-off's channel still ``pending`` or ``sending``, by recipient."""
    query = Delivery.select(Delivery.id).where(
        Delivery.handoff_id == handoff_id,
        key.where(),
        Delivery.channel == channel,
        Delivery.status.is_in(["pending", "sending"]),
    )
    if recipient_prefix is not None:  # one of ours, free of LIKE's wildcards
        query = query.where(Delivery.recipient.like(recipient_prefix + "%"))
    rows = await db.run(query.order_by(Delivery.recipient))
    return [row["id"] for row in rows]


async def last_error(*, delivery_id: uuid.UUID) -> str | None:
    rows = await db.run(Delivery.select(Delivery.last_error).where(Delivery.id == delivery_id))
    return rows[0]["last_error"] if rows else None


async def reset_failed(*, handoff_id: uuid.UUID, channel: str) -> None:
    """A hand-off's ``failed`` rows of ``channel`` back to ``pending`` with fresh attempts."""
    await db.run(
        Delivery.update(
            {Delivery.status: "pending", Delivery.attempts: 0, Delivery.updated_at: now()},
            use_auto_update=False,
        ).where(Delivery.handoff_id == handoff_id, Delivery.channel == channel, Delivery.status == "failed")
    )


async def stuck_rows(*, stuck_after_s: float, window_s: float, channels: list[str]) -> list[StuckRows]:
    """Each (hand-off, channel) of ``channels`` with a row ``pending`` or ``sending`` left
    untouched ``stuck_after_s``, created within ``window_s``."""
    rows = await db.run(
        Delivery.select(
            Delivery.account_id,
            Delivery.handoff_id,
            Delivery.channel,
            Delivery.purpose,
            Delivery.release_count,
            Delivery.tier,
            Delivery.round,
        )
        .distinct()
        .where(
            Delivery.status.is_in(["pending", "sending"]),
            Delivery.channel.is_in(channels),
            Delivery.updated_at < seconds_ago(stuck_after_s),
            Delivery.created_at > seconds_ago(window_s),
        )
    )
    return msgspec.convert(rows, list[StuckRows])


async def list_for_handoff(*, account_id: uuid.UUID, handoff_id: uuid.UUID) -> list[DeliveryRecord]:
    """A hand-off's rows, by channel and recipient: the audit trail."""
    rows = await db.run(
        Delivery.select(
            Delivery.id,
            Delivery.channel,
            Delivery.recipient,
            Delivery.status,
            Delivery.attempts,
            Delivery.last_error,
            Delivery.sent_at,
            Delivery.created_at,
            Delivery.updated_at,
            Delivery.purpose,
            Delivery.release_count,
            Delivery.tier,
            Delivery.round,
        )
        .where(Delivery.handoff_id == handoff_id, Delivery.account_id == account_id)
        .order_by(Delivery.channel, Delivery.recipient, Delivery.release_count, Delivery.round, Delivery.tier)
    )
    return msgspec.convert(rows, list[DeliveryRecord])


class NewLedgerRow(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    handoff_id: uuid.UUID
    key: LedgerKey
    channel: str
    recipient: str  # a ``bell:`` one is sent at birth (tables/queries/tiers.py: insert_ledger_rows)


async def recipients_of(*, delivery_ids: list[uuid.UUID]) -> list[str]:
    """The recipients of these rows (an e-mail batch's addresses, for its pick-up links)."""
    if not delivery_ids:
        return []
    rows = await db.run(
        Delivery.select(Delivery.recipient).where(WhereRaw('"id" = ANY({}::uuid[])', delivery_ids))
    )
    return [row["recipient"] for row in rows]
