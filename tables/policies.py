"""escalation_policies: who is told, on which channels, how long after, and the SLA.

SPEC, second edition, "Escalation policies and SLA". One policy per (account, team);
``team_id`` NULL is the account's default. The shapes inside the JSONB columns are
``tables.policy_shapes``' (validated by the API before they are written); a hand-off
copies its policy at create and at each release (``session_handoffs.policy``), so an
edit touches only what comes after.
"""

from piccolo.columns import JSONB, UUID, ForeignKey, Integer, OnDelete, Varchar
from piccolo.table import Table

from tables._columns import created_at, updated_at
from tables.accounts import Account, Team
from tables.limits import NAME_MAX


class EscalationPolicy(Table, tablename="escalation_policies"):
    """The unique (account_id, team_id or none) index is the migration's: Piccolo cannot
    declare a unique expression (COALESCE) that treats the account default's NULL as a value."""

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    team_id = ForeignKey(Team, null=True, on_delete=OnDelete.cascade)
    name = Varchar(length=NAME_MAX)
    tiers = JSONB(default=[])
    repeat = Integer(default=0)
    sla_claim_s = JSONB(null=True, default=None)
    business_hours = JSONB(null=True, default=None)
    created_at = created_at()
    updated_at = updated_at()
