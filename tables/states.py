"""The one state machine of Baton: what a session and a hand-off may become, and who may
make it so (SPEC "Session and hand-off states", "Claiming", "Reminder", and the second
edition's ``resolve``).

Every transition is a value here; the code that makes one (server.handoffs.create,
claim, release, the reminder, resolve) asks it whether it may, and the SQL
conditions of the click path's statements are written from it. The database says the
same: the states and who-holds-what are CHECK constraints generated from these tuples
(tables/handoffs.py), and a trigger refuses any other change of ``session_handoffs.state``
(migration 2026-12-04T03:00). ``tests/tables/test_states.py`` walks every pair of states
through both.

A session's status is the host app's as much as Baton's: ``PUT /sessions/{id}`` may set
any status, so the database holds sessions only to the known statuses; the transitions
below are the ones Baton itself makes.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from dataclasses import dataclass
from typing import Final

from tables.enums import (
    HANDOFF_STATES,
    PRIORITIES,
    SESSION_STATUSES,
    HandoffState,
    Intent,
    Priority,
    ResolveOutcome,
    Role,
    SessionStatus,
)


class Who(enum.Enum):
    """Who may make a transition, relative to the hand-off."""

    ANY_USER = "any eligible user of the account"
    NOT_CREATOR = "any eligible user but whoever handed it off"
    HOLDER_OR_OVERSEER = "whoever holds it, or an owner or admin"
    CREATOR = "whoever handed it off"
    BATON = "Baton itself, on no user's request"


# Roles that may act on a hand-off somebody else holds (release it, resolve it).
OVERSEER_ROLES: Final[tuple[Role, ...]] = ("owner", "admin")


@dataclass(frozen=True, slots=True)
class Caller:
    """The user asking for a transition; None for Baton's own (``Who.BATON``)."""

    id: uuid.UUID
    role: Role


def permits(
    who: Who, caller: Caller | None, *, creator_id: uuid.UUID | None, holder_id: uuid.UUID | None
) -> bool:
    """Whether ``caller`` is who ``who`` names, for a hand-off handed off by
    ``creator_id`` and held (claimed) by ``holder_id``."""
    if who is Who.BATON or caller is None:
        return who is Who.BATON and caller is None
    if who is Who.ANY_USER:
        return True
    if who is Who.NOT_CREATOR:
        return caller.id != creator_id
    if who is Who.CREATOR:
        return caller.id == creator_id
    return (holder_id is not None and caller.id == holder_id) or caller.role in OVERSEER_ROLES


@dataclass(frozen=True, slots=True)
class HandoffTransition:
    name: str
    sources: tuple[HandoffState, ...]  # empty: the hand-off is born in ``target``
    target: HandoffState
    who: Who

    def starts_from(self, state: str) -> bool:
        return state in self.sources

    def permits(
        self, caller: Caller | None, *, creator_id: uuid.UUID | None, holder_id: uuid.UUID | None
    ) -> bool:
        return permits(self.who, caller, creator_id=creator_id, holder_id=holder_id)


CREATE = HandoffTransition("create", (), "open", Who.ANY_USER)
# An escalation of a paused session replaces the park that paused it (same transaction).
SUPERSEDE = HandoffTransition("supersede", ("open",), "superseded", Who.BATON)
CLAIM = HandoffTransition("claim", ("open",), "claimed", Who.NOT_CREATOR)
RELEASE = HandoffTransition("release", ("claimed",), "open", Who.HOLDER_OR_OVERSEER)
# Once per escalation still open and unclaimed after BATON_REMIND_AFTER_S: the state
# stays, the priority goes one step up (``raised_priority``).
REMIND = HandoffTransition("remind", ("open",), "open", Who.BATON)
REMINDED_INTENT: Final = "escalate"  # a park is never reminded
# POST /handoffs/{id}/resolve (SPEC, second edition), by outcome. ``resolved`` is final.
RESOLVE = HandoffTransition("resolve", ("open", "claimed"), "resolved", Who.HOLDER_OR_OVERSEER)
RETURN = HandoffTransition("return", ("open", "claimed"), "resolved", Who.HOLDER_OR_OVERSEER)
WITHDRAW = HandoffTransition("withdraw", ("open",), "resolved", Who.CREATOR)

HANDOFF_TRANSITIONS: Final = (CREATE, SUPERSEDE, CLAIM, RELEASE, REMIND, RESOLVE, RETURN, WITHDRAW)
RESOLVE_BY_OUTCOME: Final[dict[ResolveOutcome, HandoffTransition]] = {
    "resolved": RESOLVE,
    "returned": RETURN,
    "withdrawn": WITHDRAW,
}

# Which intent's open hand-off an escalation supersedes, and only of a session in the
# status that intent left it in (a parked, so paused, session).
SUPERSEDES: Final[dict[Intent, tuple[Intent, ...]]] = {"escalate": ("park",), "park": ()}
SUPERSEDED_INTENTS: Final[tuple[Intent, ...]] = tuple(
    sorted({i for older in SUPERSEDES.values() for i in older})
)
# The reminder raises escalations only: a park notifies nobody in the first place.
REMINDED_INTENTS: Final[tuple[Intent, ...]] = ("escalate",)

# Someone holds the hand-off (``claimed_by`` set) in these states and in no others but
# those of ``EITHER_HELD_OR_NOT`` (a resolved hand-off may have been claimed or not).
HELD_STATES: Final[tuple[HandoffState, ...]] = ("claimed",)
EITHER_HELD_OR_NOT: Final[tuple[HandoffState, ...]] = ("resolved",)
UNHELD_STATES: Final[tuple[HandoffState, ...]] = tuple(
    state for state in HANDOFF_STATES if state not in HELD_STATES + EITHER_HELD_OR_NOT
)


def handoff_changes() -> frozenset[tuple[HandoffState, HandoffState]]:
    """Every (from, to) a hand-off's state may take, self-transitions left out."""
    return frozenset(
        (source, transition.target)
        for transition in HANDOFF_TRANSITIONS
        for source in transition.sources
        if source != transition.target
    )


def handoff_may_go(source: str, target: str) -> bool:
    """Whether some transition takes a hand-off from ``source`` to ``target``."""
    return any(
        transition.target == target and transition.starts_from(source) for transition in HANDOFF_TRANSITIONS
    )


FINAL_STATES: Final[tuple[HandoffState, ...]] = tuple(
    state for state in HANDOFF_STATES if not any(t.starts_from(state) for t in HANDOFF_TRANSITIONS)
)


# -- sessions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionTransition:
    name: str
    sources: tuple[SessionStatus, ...]
    # None: back to the status the session had before the hand-off was claimed.
    target: SessionStatus | None


PARK = SessionTransition("park", ("active",), "paused")
ESCALATE = SessionTransition("escalate", ("active", "paused"), "escalated")
# SPEC: paused|escalated -> active, the statuses Baton leaves a handed-off session in; the
# host app may have moved it since, and the winner takes the session up whatever it says
# (as the seed does).
TAKE_UP = SessionTransition("claim", SESSION_STATUSES, "active")
# Only while the session is still as the claim left it (active): a session the host app
# has moved on since is left where it is.
GIVE_BACK = SessionTransition("release", ("active",), None)
RESOLVE_SESSION = SessionTransition("resolve", SESSION_STATUSES, "resolved")
RETURN_SESSION = SessionTransition("return", SESSION_STATUSES, "active")  # returned, withdrawn

SESSION_TRANSITIONS: Final = (PARK, ESCALATE, TAKE_UP, GIVE_BACK, RESOLVE_SESSION, RETURN_SESSION)
SESSION_AFTER_CREATE: Final[dict[Intent, SessionTransition]] = {"park": PARK, "escalate": ESCALATE}
SESSION_AFTER_RESOLVE: Final[dict[ResolveOutcome, SessionTransition]] = {
    "resolved": RESOLVE_SESSION,
    "returned": RETURN_SESSION,
    "withdrawn": RETURN_SESSION,
}


def may_hand_off(intent: Intent, status: str) -> bool:
    """Whether a session in ``status`` may be parked / escalated."""
    return status in SESSION_AFTER_CREATE[intent].sources


def supersedes(intent: Intent, status: str, open_intent: str) -> bool:
    """Whether handing off a session in ``status`` replaces its open hand-off of
    ``open_intent``; otherwise that open hand-off refuses the new one (409)."""
    return any(
        open_intent == older and status == SESSION_AFTER_CREATE[older].target for older in SUPERSEDES[intent]
    )


def session_may_go(source: str, target: str) -> bool:
    """Whether some transition Baton makes takes a session from ``source`` to
    ``target`` (a release restores whatever the claim found: any status)."""
    return any(
        source in transition.sources and transition.target in (target, None)
        for transition in SESSION_TRANSITIONS
    )


# -- priorities ----------------------------------------------------------------------


def raised_priority(priority: Priority) -> Priority:
    """One step up ``PRIORITIES`` (low -> normal -> high -> urgent), capped at the top."""
    index = PRIORITIES.index(priority)
    return PRIORITIES[min(index + 1, len(PRIORITIES) - 1)]


# Each priority's next one up (urgent has none): what the reminder's UPDATE sets.
PRIORITY_STEP_UP: Final[dict[str, str]] = dict(itertools.pairwise(PRIORITIES))


def raised_priority_sql(column: str = "priority") -> str:
    """``raised_priority`` as a SQL expression over ``column``, for an UPDATE."""
    steps = " ".join(f"WHEN '{low}' THEN '{high}'" for low, high in itertools.pairwise(PRIORITIES))
    return f"CASE {column} {steps} ELSE {column} END"
