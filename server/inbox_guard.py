"""Ends inbox sockets whose right to listen ended (SPEC, Second edition → Security rules):
closed with 4401 when the token expires, and with 4403 within 5 s, on every replica, when
the user is deactivated or deleted.

An HTTP request re-reads its user every time; a socket authenticates once and then only
listens, so something must keep asking for it. Each replica's guard does, for all of its
sockets at once:

- **expiry**: one timer per socket at its token's ``exp`` (moved by a re-auth);
- **eligibility**: every ``POLL_INTERVAL_S``, one query over the distinct users this
  replica has sockets for (a primary-key lookup of at most a few hundred ids), the same
  rule as auth (``is_active AND deleted_at IS NULL``); a user it no longer finds, a hard
  delete included, has every socket closed. Postgres is the truth, so no Redis is needed
  and every replica sees a change by itself.

A revoked socket is cut off from the hub at once (``Watch.revoke`` runs the socket's
``on_revoke``, which unsubscribes it), so no event slips out between the decision and
the close frame; the socket's task then closes it with the code. Nothing here runs per
outgoing frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from server import tokens
from server.inbox_limits import CLOSE_BAD_AUTH, CLOSE_FORBIDDEN, Closing
from tables.queries import people

log = logging.getLogger("baton.inbox")

POLL_INTERVAL_S = 2.0
"""A deactivation closes the sockets within ~2 s and the query's time (SPEC: 5 s)."""
POLL_TIMEOUT_S = 2.0
"""A poll that cannot get a connection and an answer by then is skipped, not queued up."""

TOKEN_EXPIRED = Closing(CLOSE_BAD_AUTH, "the token expired: reconnect, or re-auth before it does")
USER_REVOKED = Closing(CLOSE_FORBIDDEN, "this user was deactivated or deleted")


class Watch:
    """One socket under the guard. ``closing`` resolves to the Closing to end it with."""

    def __init__(
        self,
        guard: InboxGuard,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        on_revoke: Callable[[], None],
    ) -> None:
        self.user_id = user_id
        self.account_id = account_id
        self.closing: asyncio.Future[Closing] = asyncio.get_running_loop().create_future()
        self._guard = guard
        self._on_revoke: Callable[[], None] | None = on_revoke
        self._expiry: asyncio.TimerHandle | None = None

    def expire_at(self, expires_at: float | None) -> None:
        """From now on the socket ends at ``expires_at`` (epoch seconds; None: never)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if expires_at is None or self.closing.done():
            return
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(max(0.0, expires_at - time.time()), self.revoke, TOKEN_EXPIRED)

    def revoke(self, closing: Closing) -> None:
        """End the socket: no frame after this call, then the close (first reason wins)."""
        if self.closing.done():
            return
        on_revoke, self._on_revoke = self._on_revoke, None
        if on_revoke is not None:
            on_revoke()
        self.closing.set_result(closing)
        self.forget()

    def forget(self) -> None:
        """The socket is gone: no timer, no more polls for it. Safe to call twice."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._on_revoke = None
        self._guard._forget(self)


class InboxGuard:
    """This replica's sockets, by user: ``watch = guard.watch(…)``, finally ``watch.forget()``."""

    def __init__(
        self, poll_interval_s: float = POLL_INTERVAL_S, poll_timeout_s: float = POLL_TIMEOUT_S
    ) -> None:
        self._poll_interval_s = poll_interval_s
        self._poll_timeout_s = poll_timeout_s
        self._by_user: dict[uuid.UUID, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def watch(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        expires_at: float | None,
        on_revoke: Callable[[], None],
    ) -> Watch:
        watch = Watch(self, user_id, account_id, on_revoke)
        self._by_user.setdefault(user_id, set()).add(watch)
        watch.expire_at(expires_at)
        return watch

    @property
    def sockets(self) -> int:
        return sum(len(watches) for watches in self._by_user.values())

    def _forget(self, watch: Watch) -> None:
        watches = self._by_user.get(watch.user_id)
        if watches is None:
            return
        watches.discard(watch)
        if not watches:
            del self._by_user[watch.user_id]

    # -- eligibility -------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="inbox-guard")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                async with asyncio.timeout(self._poll_timeout_s):
                    await self.check_users()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # why so broad: a dead guard is a silently open door
                if not self._failing:
                    log.warning(
                        "could not check the inbox's users (%s: %s); trying again", type(exc).__name__, exc
                    )
                self._failing = True
            else:
                if self._failing:
                    log.info("the inbox's users are checked again")
                self._failing = False

    async def check_users(self) -> None:
        """One query for every user with a socket here; close the sockets of the ineligible."""
        user_ids = list(self._by_user)
        if not user_ids:
            return
        eligible = await people.eligible_user_ids(user_ids=user_ids)
        for user_id in user_ids:
            if user_id in eligible:
                continue
            watches = list(self._by_user.get(user_id, ()))
            if watches:
                log.info(
                    "closing %d inbox socket(s) of user %s: deactivated or deleted", len(watches), user_id
                )
            for watch in watches:
                watch.revoke(USER_REVOKED)


def token_expires_at(secret: str, token: str) -> float | None:
    """The token's ``exp`` (epoch seconds), None when it has none; ValueError when it is
    not a number. The token must be valid (``tokens.decode`` remembers it: no second check)."""
    claims: Mapping[str, Any] = tokens.decode(secret, token)
    expires_at = claims.get("exp")
    if expires_at is None:
        return None
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise ValueError("the token's exp is not a number")
    return float(expires_at)
