"""Where an account's messages go: chat webhooks and PSA connections.

Both hold secrets (``secret=True``): ``select(exclude_secrets=True)`` leaves them out,
and the API never returns them.
"""

from piccolo.columns import JSONB, UUID, Boolean, ForeignKey, OnDelete, Text, Varchar
from piccolo.table import Table

from tables._columns import created_at, one_of, updated_at
from tables.accounts import Account
from tables.enums import CHANNEL_KINDS, PSA_KINDS
from tables.limits import ENUM_MAX


class NotificationChannel(Table, tablename="notification_channels"):
    """A Slack or Teams incoming webhook; the host app chooses the id."""

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=ENUM_MAX)
    # The webhook URL is the credential: whoever has it can post to the channel.
    url = Text(secret=True)
    enabled = Boolean(default=True)
    # Slack's signing secret for this channel's interactions (Pick up buttons): write-only,
    # never returned. NULL: the channel's buttons are refused (nothing to verify with).
    signing_secret = Text(null=True, default=None, secret=True)
    created_at = created_at()
    updated_at = updated_at()

    notification_channels_kind_check = one_of("kind", CHANNEL_KINDS)


class PsaConnection(Table, tablename="psa_connections"):
    """Credentials for one PSA; the host app chooses the id."""

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=ENUM_MAX)
    base_url = Text()
    credentials = JSONB(default={}, secret=True)
    # {baton user id: PSA member id}, so a note can be attributed to its author.
    member_mapping = JSONB(default={})
    created_at = created_at()
    updated_at = updated_at()

    psa_connections_kind_check = one_of("kind", PSA_KINDS)
