"""The allowed values of every enum-like column.

Each set is a ``Literal`` type (for schemas and type checkers) and a tuple derived from
it (for CHECK constraints and runtime validation), so the two can never drift apart.
"""

from typing import Literal, get_args

Intent = Literal["park", "escalate"]
HandoffState = Literal["open", "claimed", "superseded", "resolved"]  # tables/states.py: how they follow
Priority = Literal["low", "normal", "high", "urgent"]
Role = Literal["owner", "admin", "engineer", "technician"]
SeniorRole = Literal["owner", "admin", "engineer"]
SessionStatus = Literal["active", "paused", "escalated", "resolved", "closed"]
AssessmentStatus = Literal["pending", "ready", "failed", "not_applicable"]
BriefingStatus = Literal["pending", "ready", "failed"]
PsaPushStatus = Literal["pushed", "failed", "no_psa"]
DeliveryStatus = Literal["pending", "sending", "sent", "failed"]
DeliveryChannel = Literal["email", "slack", "teams", "psa", "bell", "reminder"]
ChannelKind = Literal["slack", "teams"]
PsaKind = Literal["connectwise", "autotask", "halopsa"]
ResolveOutcome = Literal["resolved", "returned", "withdrawn"]  # SPEC, second edition: resolve

INTENTS: tuple[Intent, ...] = get_args(Intent)
HANDOFF_STATES: tuple[HandoffState, ...] = get_args(HandoffState)
# Ordered lowest to highest: the reminder raises a priority one step along this tuple.
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
ROLES: tuple[Role, ...] = get_args(Role)
SENIOR_ROLES: tuple[SeniorRole, ...] = get_args(SeniorRole)
SESSION_STATUSES: tuple[SessionStatus, ...] = get_args(SessionStatus)
ASSESSMENT_STATUSES: tuple[AssessmentStatus, ...] = get_args(AssessmentStatus)
BRIEFING_STATUSES: tuple[BriefingStatus, ...] = get_args(BriefingStatus)
PSA_PUSH_STATUSES: tuple[PsaPushStatus, ...] = get_args(PsaPushStatus)
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)
# Not enforced by a CHECK: a new channel should not need a migration. Listed so the
# actors and the API agree on the spelling of the ones that exist.
DELIVERY_CHANNELS: tuple[DeliveryChannel, ...] = get_args(DeliveryChannel)
CHANNEL_KINDS: tuple[ChannelKind, ...] = get_args(ChannelKind)
PSA_KINDS: tuple[PsaKind, ...] = get_args(PsaKind)
RESOLVE_OUTCOMES: tuple[ResolveOutcome, ...] = get_args(ResolveOutcome)

DEFAULT_PRIORITY: Priority = "normal"
