"""What leaves Baton: deliveries (the audit trail), the outbox, and the in-app bell."""

from piccolo.columns import (
    JSONB,
    UUID,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table

from tables._columns import created_at, one_of, updated_at
from tables.accounts import Account, User
from tables.enums import DELIVERY_STATUSES
from tables.handoffs import SessionHandoff
from tables.limits import ACTOR_NAME_MAX, CHANNEL_MAX, ENUM_MAX, KIND_MAX, URL_MAX
from tables.sessions import AiSession


class Delivery(Table, tablename="deliveries"):
    """One message of one hand-off to one recipient over one channel.

    The row is claimed (``pending`` -> ``sending``) before the send and marked ``sent``
    after it; the unique (handoff_id, channel, recipient) means a retried actor finds
    the row instead of sending twice.

    The ledger's key (SPEC second edition) is hand-off x purpose x release count x tier x
    round x channel x recipient: ``purpose`` ``notify`` for the first edition's messages
    (the create's, the reminder's, the PSA note), ``tier`` for an escalation policy's
    tiers, so a tier after a release is a new delivery and a retry still is not.
    """

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    handoff_id = ForeignKey(SessionHandoff, null=False, on_delete=OnDelete.cascade)
    channel = Varchar(length=CHANNEL_MAX)  # tables.enums.DELIVERY_CHANNELS
    # An e-mail address, a user id (bell), a channel id or ticket id: never a secret.
    recipient = Text()
    purpose = Varchar(length=ENUM_MAX, default="notify")
    release_count = Integer(default=0)
    tier = Integer(default=0)
    round = Integer(default=1)
    status = Varchar(length=ENUM_MAX, default="pending")
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    created_at = created_at()
    updated_at = updated_at()

    deliveries_status_check = one_of("status", DELIVERY_STATUSES)
    deliveries_ledger_key = Unique([handoff_id, purpose, release_count, tier, round, channel, recipient])


# Every insert into outbox NOTIFYs this channel on commit (a trigger, created by the
# migration of 2026-11-30): the workers' relays LISTEN on it (actors/outbox.py).
OUTBOX_NOTIFY_CHANNEL = "baton_outbox"
# The outbox job holding a change's inbox events: the relay publishes these itself, in
# commit order, instead of handing them to Dramatiq (actors/outbox.py).
ANNOUNCE_EVENTS = "announce_events"


class Outbox(Table, tablename="outbox"):
    """A job for a Dramatiq actor, written in the transaction of the change behind it.

    The workers' relay, woken by the commit's NOTIFY, hands it to the broker and sets
    ``sent_at``; a crash between commit and send leaves it unsent, to be picked up again
    (actors are idempotent).
    """

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    actor_name = Varchar(length=ACTOR_NAME_MAX)
    payload = JSONB(default={})
    attempts = Integer(default=0)
    created_at = created_at()
    sent_at = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None)  # the job's message succeeded


class AppNotification(Table, tablename="app_notifications"):
    """A row in a user's in-app bell."""

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    user_id = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=KIND_MAX)  # e.g. "session.escalated"
    title = Text(default="")
    body = Text(default="")
    link = Varchar(length=URL_MAX, null=True, default=None)
    handoff_id = ForeignKey(SessionHandoff, null=True, on_delete=OnDelete.cascade)
    session_id = ForeignKey(AiSession, null=True, on_delete=OnDelete.cascade)
    read_at = Timestamptz(null=True, default=None)
    created_at = created_at()
