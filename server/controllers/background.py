"""What the background work left: briefing, PSA push, delivery records, the bell, and the
legacy escalate shim."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from server.auth import UserCaller, provide_user, users_only
from server.handoffs.briefing import read_briefing
from server.handoffs.deliveries import list_deliveries
from server.handoffs.idempotency import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_PATTERN
from server.handoffs.psa import legacy_escalate, psa_push
from server.notifications import CURSOR_MAX_CHARS, DEFAULT_LIMIT, MAX_LIMIT, list_notifications, mark_read
from server.schemas.background import (
    BriefingOut,
    DeliveriesOut,
    EscalateOut,
    EscalateRequest,
    NotificationOut,
    NotificationsPage,
    PsaPushOut,
)


class HandoffWorkController(Controller):
    tags = ("hand-offs",)
    guards = (users_only,)
    dependencies = {"caller": Provide(provide_user, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @get(
        "/handoffs/{handoff_id:uuid}/briefing",
        summary="The briefing for whoever picks the hand-off up: 200 with it, 202 while it is made",
    )
    async def briefing(
        self, caller: NamedDependency[UserCaller], handoff_id: FromPath[uuid.UUID]
    ) -> Response[BriefingOut]:
        found = await read_briefing(caller.account_id, handoff_id)
        body = BriefingOut(
            handoff_id=found.handoff_id,
            session_id=found.session_id,
            status=found.status,
            briefing=found.briefing,
        )
        return Response(body, status_code=200 if found.status == "ready" else 202)

    @post(
        "/handoffs/{handoff_id:uuid}/psa-push",
        status_code=200,
        summary="Push the documentation to the PSA ticket (again, when it failed)",
    )
    async def psa_push(
        self, caller: NamedDependency[UserCaller], handoff_id: FromPath[uuid.UUID]
    ) -> PsaPushOut:
        return await psa_push(caller.account_id, handoff_id)

    @get("/handoffs/{handoff_id:uuid}/deliveries", summary="Per-channel delivery records of a hand-off")
    async def deliveries(
        self, caller: NamedDependency[UserCaller], handoff_id: FromPath[uuid.UUID]
    ) -> DeliveriesOut:
        return await list_deliveries(caller.account_id, handoff_id)

    @post(
        "/sessions/{session_id:uuid}/escalate",
        status_code=200,
        summary="Legacy: escalate and push the documentation to the PSA in one call",
    )
    async def escalate(
        self,
        caller: NamedDependency[UserCaller],
        state: State,
        session_id: FromPath[uuid.UUID],
        data: JSONBody[EscalateRequest],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name=IDEMPOTENCY_KEY_HEADER, pattern=IDEMPOTENCY_KEY_PATTERN)
        ] = None,
    ) -> EscalateOut:
        return await legacy_escalate(
            caller=caller,
            session_id=session_id,
            request=data,
            idempotency_key=idempotency_key,
            redis_client=state.redis,
            frontend_url=state.settings.frontend_url,
        )


class NotificationController(Controller):
    tags = ("bell",)
    guards = (users_only,)
    dependencies = {"caller": Provide(provide_user, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @get("/notifications", summary="The caller's bell, newest first")
    async def list(
        self,
        caller: NamedDependency[UserCaller],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=CURSOR_MAX_CHARS)] = None,
        unread_only: Annotated[bool, QueryParameter()] = False,
    ) -> NotificationsPage:
        return await list_notifications(
            account_id=caller.account_id,
            user_id=caller.id,
            limit=limit,
            cursor=cursor,
            unread_only=unread_only,
        )

    @post("/notifications/{notification_id:uuid}/read", status_code=200, summary="Mark a notification read")
    async def read(
        self, caller: NamedDependency[UserCaller], notification_id: FromPath[uuid.UUID]
    ) -> NotificationOut:
        return await mark_read(
            account_id=caller.account_id, user_id=caller.id, notification_id=notification_id
        )
