"""What the inbox page needs beyond the hand-off API: who the token belongs to, and a
retry for an assessment that failed."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from server.auth import UserCaller, provide_user, users_only
from server.handoffs.reassess import retry_assessment
from server.schemas.handoffs import HandoffOut
from server.schemas.me import MeOut


class InboxPageController(Controller):
    tags = ("inbox page",)
    guards = (users_only,)
    dependencies = {"caller": Provide(provide_user, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @get("/me", summary="The user the token belongs to")
    async def me(self, caller: NamedDependency[UserCaller]) -> MeOut:
        return MeOut(id=caller.id, account_id=caller.account_id, name=caller.name, role=caller.role)

    @post(
        "/handoffs/{handoff_id:uuid}/assessment",
        status_code=202,
        summary="Run a failed assessment again: 202, then handoff_assessment_ready when done",
    )
    async def retry_assessment(
        self, caller: NamedDependency[UserCaller], state: State, handoff_id: FromPath[uuid.UUID]
    ) -> Response[HandoffOut]:
        handoff = await retry_assessment(
            account_id=caller.account_id, handoff_id=handoff_id, redis_client=state.redis
        )
        return Response(handoff, status_code=202)
