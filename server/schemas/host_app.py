"""What the host app writes (``PUT``) and reads back: users, teams, channels, PSA
connections and sessions. Secrets (webhook URLs, PSA credentials, signing secrets) go in,
never out.

Fields of SPEC's second edition (``slack_user_id``, ``signing_secret``) default to
``UNSET``: a PUT that omits one keeps the stored value, ``null`` clears it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from server.schemas.bounds import (
    BRANCHES_MAX,
    CREDENTIAL_FIELDS_MAX,
    MEMBER_MAPPING_MAX,
    MESSAGES_MAX,
    STEPS_MAX,
    BranchLabel,
    CredentialName,
    CredentialValue,
    Email,
    MessageContent,
    MessageRole,
    Name,
    Order,
    ProblemDomain,
    ProblemSummary,
    PsaId,
    ShortText,
    SigningSecret,
    SlackUserId,
    StatusReason,
    StepText,
    Url,
)
from tables.enums import ChannelKind, PsaKind, Role, SessionStatus


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are an error, not silently dropped."""


# ------------------------------------------------------------------ people


class UserPut(_In):
    email: Email
    name: Name
    account_role: Role
    team_id: uuid.UUID | None = None
    is_active: bool = True
    # Who presses Pick up in Slack (user.id of Slack's interaction payload).
    slack_user_id: SlackUserId | msgspec.UnsetType | None = msgspec.UNSET


class UserOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    name: str
    account_role: Role
    team_id: uuid.UUID | None
    is_active: bool
    slack_user_id: str | None
    created_at: datetime
    updated_at: datetime


class TeamPut(_In):
    name: Name


class TeamOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------ integrations


class ChannelPut(_In):
    kind: ChannelKind
    url: Url
    enabled: bool = True
    # The Slack app's signing secret, which verifies its Pick up presses (Slack only;
    # write-only). Without one the channel's messages carry no Pick up button.
    signing_secret: SigningSecret | msgspec.UnsetType | None = msgspec.UNSET


class ChannelOut(msgspec.Struct, kw_only=True):
    """A chat webhook, without its URL (the URL is the credential) or signing secret."""

    id: uuid.UUID
    kind: ChannelKind
    enabled: bool
    has_signing_secret: bool
    created_at: datetime
    updated_at: datetime


class PsaConnectionPut(_In):
    kind: PsaKind
    base_url: Url
    credentials: Annotated[
        dict[CredentialName, CredentialValue], msgspec.Meta(max_length=CREDENTIAL_FIELDS_MAX)
    ]
    member_mapping: Annotated[dict[uuid.UUID, PsaId], msgspec.Meta(max_length=MEMBER_MAPPING_MAX)] = {}


class PsaConnectionOut(msgspec.Struct, kw_only=True):
    """A PSA connection; of its credentials only the field names are told."""

    id: uuid.UUID
    kind: PsaKind
    base_url: str
    credential_fields: list[str]
    member_mapping: dict[str, str]
    created_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------ sessions


class StepContent(_In):
    text: StepText


class StepIn(_In):
    step_order: Order
    content: StepContent
    selected_option: StepText | None = None
    free_text_input: StepText | None = None
    was_skipped: bool = False


class BranchIn(_In):
    id: uuid.UUID
    label: BranchLabel
    status: ShortText
    branch_order: Order
    status_reason: StatusReason | None = None
    parent_branch_id: uuid.UUID | None = None


class MessageIn(_In):
    role: MessageRole
    content: MessageContent


class SessionPut(_In):
    """A session as the host app holds it. ``status`` omitted keeps Baton's (a parked
    session stays parked while the host app adds steps); new sessions start ``active``."""

    user_id: uuid.UUID
    team_id: uuid.UUID | None = None
    status: SessionStatus | None = None
    problem_summary: ProblemSummary | None = None
    problem_domain: ProblemDomain | None = None
    confidence_tier: ShortText | None = None
    is_branching: bool = False
    active_branch_id: uuid.UUID | None = None
    steps: Annotated[list[StepIn], msgspec.Meta(max_length=STEPS_MAX)] = []
    branches: Annotated[list[BranchIn], msgspec.Meta(max_length=BRANCHES_MAX)] = []
    conversation_messages: Annotated[list[MessageIn], msgspec.Meta(max_length=MESSAGES_MAX)] = []
    psa_ticket_id: PsaId | None = None
    psa_connection_id: uuid.UUID | None = None


class StepOut(msgspec.Struct, kw_only=True):
    step_order: int
    content: dict[str, Any]
    selected_option: str | None
    free_text_input: str | None
    was_skipped: bool


class BranchOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    label: str
    status: str
    status_reason: str | None
    parent_branch_id: uuid.UUID | None
    branch_order: int


class SessionOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    team_id: uuid.UUID | None
    status: SessionStatus
    problem_summary: str | None
    problem_domain: str | None
    step_count: int
    confidence_tier: str | None
    is_branching: bool
    active_branch_id: uuid.UUID | None
    escalation_reason: str | None
    escalated_to_id: uuid.UUID | None
    escalation_package: dict[str, Any] | None
    handoff_count: int
    psa_ticket_id: str | None
    psa_connection_id: uuid.UUID | None
    steps: list[StepOut]
    branches: list[BranchOut]
    conversation_messages: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
