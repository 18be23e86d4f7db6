"""The sessions the host app hands to Baton: ai_sessions and their steps and branches."""

from piccolo.columns import (
    JSONB,
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Varchar,
)
from piccolo.table import Table

from tables._columns import created_at, one_of, updated_at
from tables.accounts import Account, Team, User
from tables.enums import SESSION_STATUSES
from tables.integrations import PsaConnection
from tables.limits import ENUM_MAX, PSA_ID_MAX, SHORT_TEXT_MAX


class AiSession(Table, tablename="ai_sessions"):
    """A troubleshooting session; the host app chooses the id (PUT /sessions/{id})."""

    id = UUID(primary_key=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade, index=True)
    team_id = ForeignKey(Team, null=True, on_delete=OnDelete.set_null)
    # NO ACTION, not RESTRICT: checked at the end of the statement, so deleting the
    # account (which cascades to both rows) works, while deleting the user alone fails.
    user_id = ForeignKey(User, null=False, on_delete=OnDelete.no_action)
    status = Varchar(length=ENUM_MAX, default="active")
    problem_summary = Text(null=True, default=None)
    problem_domain = Text(null=True, default=None)
    step_count = Integer(default=0)
    confidence_tier = Varchar(length=SHORT_TEXT_MAX, null=True, default=None)
    is_branching = Boolean(default=False)
    # Not a foreign key: the host app replaces branches on every PUT, and the hand-off
    # snapshot must keep pointing at the branch it saw.
    active_branch_id = UUID(null=True, default=None)
    escalation_reason = Text(null=True, default=None)
    escalated_to_id = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    escalation_package = JSONB(null=True, default=None)
    handoff_count = Integer(default=0)
    psa_ticket_id = Varchar(length=PSA_ID_MAX, null=True, default=None)
    psa_connection_id = ForeignKey(PsaConnection, null=True, on_delete=OnDelete.set_null)
    conversation_messages = JSONB(default=[])
    created_at = created_at()
    updated_at = updated_at()

    ai_sessions_status_check = one_of("status", SESSION_STATUSES)


class SessionStep(Table, tablename="session_steps"):
    """One step of a session; ``content`` is ``{"text": ...}``."""

    id = UUID(primary_key=True)
    session_id = ForeignKey(AiSession, null=False, on_delete=OnDelete.cascade)
    step_order = Integer(default=0)
    content = JSONB(default={})
    selected_option = Text(null=True, default=None)
    free_text_input = Text(null=True, default=None)
    was_skipped = Boolean(default=False)


class SessionBranch(Table, tablename="session_branches"):
    """A branch of a branching session; the host app chooses the id."""

    id = UUID(primary_key=True)
    session_id = ForeignKey(AiSession, null=False, on_delete=OnDelete.cascade)
    label = Text(default="")
    # Free text of the host app, bounded by the wire.
    status = Varchar(length=SHORT_TEXT_MAX, default="")
    status_reason = Text(null=True, default=None)
    # Not a foreign key: branches arrive as one list per PUT, in any order.
    parent_branch_id = UUID(null=True, default=None)
    branch_order = Integer(default=0)
