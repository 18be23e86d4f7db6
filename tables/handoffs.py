"""session_handoffs: a parked or escalated session waiting for someone to pick it up."""

from piccolo.columns import (
    JSONB,
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check
from piccolo.table import Table

from tables._columns import created_at, one_of, sql_list, updated_at
from tables.accounts import Account, Team, User
from tables.enums import (
    ASSESSMENT_STATUSES,
    BRIEFING_STATUSES,
    HANDOFF_STATES,
    INTENTS,
    PRIORITIES,
    PSA_PUSH_STATUSES,
    RESOLVE_OUTCOMES,
    SESSION_STATUSES,
)
from tables.limits import (
    ENUM_MAX,
    FINGERPRINT_MAX,
    IDEMPOTENCY_KEY_MAX,
    PSA_ID_MAX,
)
from tables.sessions import AiSession
from tables.states import HELD_STATES, SUPERSEDE, SUPERSEDED_INTENTS, UNHELD_STATES


class SessionHandoff(Table, tablename="session_handoffs"):
    """One park or escalation of a session.

    The partial indexes this table relies on (one open hand-off per session, the queue,
    idempotency keys) live in the raw-SQL migration: Piccolo cannot declare them.
    """

    id = UUID(primary_key=True)
    session_id = ForeignKey(AiSession, null=False, on_delete=OnDelete.cascade, index=True)
    account_id = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    # Copied from the session at create time, so the queue filters by team without a join.
    team_id = ForeignKey(Team, null=True, on_delete=OnDelete.set_null)
    # NO ACTION: a user with hand-offs cannot be hard-deleted (soft-delete them), yet
    # deleting the whole account still cascades.
    handed_off_by = ForeignKey(User, null=False, on_delete=OnDelete.no_action)
    # No default: a hand-off without an intent is a bug, and must fail loudly.
    intent = Varchar(length=ENUM_MAX, default=None)
    state = Varchar(length=ENUM_MAX, default="open")
    # Not a foreign key: branches are replaced by the host app; the snapshot keeps them.
    source_branch_id = UUID(null=True, default=None)
    snapshot = JSONB(default={})

    ai_assessment = Text(null=True, default=None)
    ai_assessment_data = JSONB(null=True, default=None)
    assessment_status = Varchar(length=ENUM_MAX, default="pending")

    engineer_notes = Text(null=True, default=None)
    priority = Varchar(length=ENUM_MAX, default="normal")
    target_user_id = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    claimed_by = ForeignKey(User, null=True, on_delete=OnDelete.no_action)
    claimed_at = Timestamptz(null=True, default=None)
    # What the session's status was before the claim, so a release can restore it.
    pre_claim_session_status = Varchar(length=ENUM_MAX, null=True, default=None)

    briefing = Text(null=True, default=None)
    briefing_status = Varchar(length=ENUM_MAX, null=True, default=None)

    psa_note_pushed = Boolean(default=False)
    psa_note_id = Varchar(length=PSA_ID_MAX, null=True, default=None)
    psa_push_status = Varchar(length=ENUM_MAX, null=True, default=None)
    psa_push_error = Text(null=True, default=None)
    member_mapping_warning = Text(null=True, default=None)

    idempotency_key = Varchar(length=IDEMPOTENCY_KEY_MAX, null=True, default=None)
    # Hash of the create body: the same key with another body is a client error.
    request_fingerprint = Varchar(length=FINGERPRINT_MAX, null=True, default=None)
    # The first response, replayed verbatim when the same key comes again.
    response = JSONB(null=True, default=None)

    reminded_at = Timestamptz(null=True, default=None)

    # Escalation policies (SPEC second edition; the tier engine: actors/tiers/). The policy
    # as copied at create and at each release (NULL: the built-in default, the reminder).
    policy = JSONB(null=True, default=None)
    policy_id = UUID(null=True, default=None)  # not a foreign key: the copy outlives an edit or delete
    release_count = Integer(default=0)
    # The next tier to fire, its round and when (NULL: none left, or no policy).
    tier_next = Integer(null=True, default=None)
    tier_round = Integer(default=1)
    tier_due_at = Timestamptz(null=True, default=None)
    last_tier = JSONB(null=True, default=None)  # {tier, round, at}
    claim_due_at = Timestamptz(null=True, default=None)
    breached_at = Timestamptz(null=True, default=None)  # = claim_due_at, once, never cleared
    # How it ended (POST /handoffs/{id}/resolve; migration 2026-12-04T21:00), all NULL
    # before. NO ACTION, as claimed_by: a user who resolved hand-offs is soft-deleted.
    resolution_outcome = Varchar(length=ENUM_MAX, null=True, default=None)
    resolution_note = Text(null=True, default=None)
    resolved_by = ForeignKey(User, null=True, on_delete=OnDelete.no_action)
    resolved_at = Timestamptz(null=True, default=None)
    created_at = created_at()
    updated_at = updated_at()

    session_handoffs_intent_check = one_of("intent", INTENTS)
    session_handoffs_state_check = one_of("state", HANDOFF_STATES)
    session_handoffs_priority_check = one_of("priority", PRIORITIES)
    session_handoffs_assessment_status_check = one_of("assessment_status", ASSESSMENT_STATUSES)
    session_handoffs_briefing_status_check = one_of("briefing_status", BRIEFING_STATUSES)
    session_handoffs_psa_push_status_check = one_of("psa_push_status", PSA_PUSH_STATUSES)
    session_handoffs_pre_claim_session_status_check = one_of("pre_claim_session_status", SESSION_STATUSES)
    session_handoffs_resolution_outcome_check = one_of("resolution_outcome", RESOLVE_OUTCOMES)
    # Someone holds it exactly in the held states (tables/states.py): a release that
    # forgets to clear claimed_by would leave a card nobody can claim. A resolved one
    # keeps whoever held it, or never had anyone.
    session_handoffs_claimed_by_check = Check(
        f'("state" NOT IN {sql_list(HELD_STATES)} OR "claimed_by" IS NOT NULL)'
        f' AND ("state" NOT IN {sql_list(UNHELD_STATES)} OR "claimed_by" IS NULL)'
    )
    # Only what an escalation supersedes (a park) is ever superseded.
    session_handoffs_superseded_check = Check(
        f'"state" <> \'{SUPERSEDE.target}\' OR "intent" IN {sql_list(SUPERSEDED_INTENTS)}'
    )
    # Which state may follow which is not a CHECK (a CHECK sees one row version): the
    # trigger session_handoffs_state_transition refuses the rest (migration 2026-12-04T03:00).
