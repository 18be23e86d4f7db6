"""Picking a hand-off up from an e-mail's link (SPEC second edition, "Pick up from the e-mail").

The link (``actors/pickup_links.py``) names a hand-off and the recipient it was sent to.
``look`` is what its GET shows and changes nothing: mail scanners fetch every link, so
no claim, no briefing asked for, no event. ``pick_up`` is its POST: the claim **as that
recipient**, through the one claim path (``server/handoffs/claim.py``), with a caller
built as the HTTP claim's is, from the recipient's users row, which must still be
eligible (active, not deleted). The inbox then hears ``handoff_claimed`` exactly as for
an API claim, and posting again after winning wins again (the claim is idempotent for
its holder).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio

from pickup_links import BadLink, ExpiredLink, PickupLink, read_token
from server.auth import UserCaller
from server.handoffs.claim import claim_handoff
from server.handoffs.read import get_handoff
from server.problems import Problem
from server.schemas.handoffs import HandoffOut
from tables.queries import handoffs, people
from tables.queries.handoffs import BriefingRow


class PickupRefused(Exception):
    """The link cannot be used: ``status`` is the page's (404 unknown, 410 expired,
    403 not allowed), ``reason`` one of those words for the page to explain."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


UNKNOWN = PickupRefused(404, "unknown")
EXPIRED = PickupRefused(410, "expired")
NOT_ALLOWED = PickupRefused(403, "not_allowed")
OWN_HANDOFF = PickupRefused(403, "own_handoff")


def read_link(secret: str, token: str) -> PickupLink:
    """The link, checked without touching the database; ``PickupRefused`` otherwise."""
    try:
        return read_token(secret, token)
    except BadLink:
        raise UNKNOWN from None
    except ExpiredLink:
        raise EXPIRED from None


async def recipient(link: PickupLink) -> UserCaller:
    """The caller the link stands for, as an API claim builds one from its token's user:
    403 when that user can no longer act (deactivated or deleted), 404 when there is none."""
    user = await people.link_recipient(user_id=link.user_id)
    if user is None:
        raise UNKNOWN
    if not user.eligible:
        raise NOT_ALLOWED
    return UserCaller(account_id=user.account_id, id=link.user_id, name=user.name, role=user.account_role)


@dataclass(frozen=True, slots=True)
class Look:
    """A hand-off as its recipient's link sees it."""

    caller: UserCaller
    handoff: HandoffOut
    briefing: BriefingRow | None = None  # only when the caller holds it

    @property
    def held_by_caller(self) -> bool:
        return self.handoff.claimed_by is not None and self.handoff.claimed_by.id == self.caller.id


@dataclass(frozen=True, slots=True)
class Lost:
    """Someone else holds it (who and when), or no claim can move it any more."""

    handoff: HandoffOut
    detail: str
    claimed_by_name: str | None
    claimed_at: datetime | None


async def _handoff(caller: UserCaller, handoff_id: uuid.UUID) -> HandoffOut:
    try:
        return await get_handoff(caller.account_id, handoff_id)
    except Problem:  # gone, or (never by construction) another account's
        raise UNKNOWN from None


async def _with_briefing(caller: UserCaller, handoff: HandoffOut) -> Look:
    look = Look(caller, handoff)
    if not look.held_by_caller:
        return look
    # Read only: a GET never asks for a briefing (the winning claim did).
    briefing = await handoffs.briefing_of(account_id=caller.account_id, handoff_id=handoff.id)
    return Look(caller, handoff, briefing)


async def look(secret: str, token: str) -> Look:
    """What the link's page shows; reads only."""
    link = read_link(secret, token)
    caller = await recipient(link)
    return await _with_briefing(caller, await _handoff(caller, link.handoff_id))


async def pick_up(link: PickupLink, redis_client: redis.asyncio.Redis) -> Look | Lost:
    """The claim as the link's recipient: their ``Look`` on a win (now or before), else ``Lost``."""
    caller = await recipient(link)
    try:
        claimed = await claim_handoff(caller=caller, handoff_id=link.handoff_id, redis_client=redis_client)
    except Problem as refused:
        if refused.status_code == 404:
            raise UNKNOWN from None
        if refused.status_code == 403:  # their own hand-off: never e-mailed, but say so
            raise OWN_HANDOFF from None
        if refused.status_code != 409:
            raise
        claimed_at = refused.members.get("claimed_at")
        return Lost(
            handoff=await _handoff(caller, link.handoff_id),
            detail=refused.detail,
            claimed_by_name=refused.members.get("claimed_by_name"),
            claimed_at=datetime.fromisoformat(claimed_at) if claimed_at else None,
        )
    return await _with_briefing(caller, claimed.handoff)
