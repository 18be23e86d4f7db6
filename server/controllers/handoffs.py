"""Hand-offs: park or escalate a session, read one, claim it, release it, resolve it, and
the queue."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from server.auth import UserCaller, provide_user, users_only
from server.handoffs.claim import claim_handoff
from server.handoffs.create import create_handoff
from server.handoffs.idempotency import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_PATTERN
from server.handoffs.queue import CURSOR_MAX_CHARS, DEFAULT_LIMIT, MAX_LIMIT, QueueOrder, queue_page
from server.handoffs.read import get_handoff
from server.handoffs.release import release_handoff
from server.handoffs.resolve import resolve_handoff
from server.schemas.handoffs import HandoffCreate, HandoffOut, QueuePage, ResolveRequest
from tables.enums import Intent

API_PREFIX = "/api/v1"
REPLAYED_HEADER = "Idempotent-Replayed"


class HandoffController(Controller):
    tags = ("hand-offs",)
    guards = (users_only,)
    dependencies = {"caller": Provide(provide_user, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @post("/sessions/{session_id:uuid}/handoffs", summary="Park or escalate a session")
    async def create(
        self,
        caller: NamedDependency[UserCaller],
        state: State,
        session_id: FromPath[uuid.UUID],
        data: JSONBody[HandoffCreate],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name=IDEMPOTENCY_KEY_HEADER, pattern=IDEMPOTENCY_KEY_PATTERN)
        ] = None,
    ) -> Response[HandoffOut]:
        created = await create_handoff(
            caller=caller,
            session_id=session_id,
            request=data,
            idempotency_key=idempotency_key,
            redis_client=state.redis,
            frontend_url=state.settings.frontend_url,
        )
        headers = {"Location": f"{API_PREFIX}/handoffs/{created.handoff.id}"}
        if created.replayed:
            headers[REPLAYED_HEADER] = "true"
        # A replay answers what the first request did: 201, same body.
        return Response(created.handoff, status_code=201, headers=headers)

    @get(
        "/handoffs/{handoff_id:uuid}", summary="A hand-off with its state, snapshot, assessment and PSA note"
    )
    async def read(self, caller: NamedDependency[UserCaller], handoff_id: FromPath[uuid.UUID]) -> HandoffOut:
        return await get_handoff(caller.account_id, handoff_id)

    @post(
        "/handoffs/{handoff_id:uuid}/claim", status_code=200, summary="Claim a hand-off: first claimer wins"
    )
    async def claim(
        self, caller: NamedDependency[UserCaller], state: State, handoff_id: FromPath[uuid.UUID]
    ) -> HandoffOut:
        claimed = await claim_handoff(caller=caller, handoff_id=handoff_id, redis_client=state.redis)
        return claimed.handoff

    @post("/handoffs/{handoff_id:uuid}/release", status_code=200, summary="Give a claimed hand-off back")
    async def release(
        self, caller: NamedDependency[UserCaller], state: State, handoff_id: FromPath[uuid.UUID]
    ) -> HandoffOut:
        return await release_handoff(caller=caller, handoff_id=handoff_id, redis_client=state.redis)

    @post(
        "/handoffs/{handoff_id:uuid}/resolve",
        status_code=200,
        summary="End a hand-off: resolved, returned to its technician, or withdrawn by them",
    )
    async def resolve(
        self,
        caller: NamedDependency[UserCaller],
        state: State,
        handoff_id: FromPath[uuid.UUID],
        data: JSONBody[ResolveRequest],
    ) -> HandoffOut:
        return await resolve_handoff(
            caller=caller, handoff_id=handoff_id, request=data, redis_client=state.redis
        )

    @get("/queue", summary="Open hand-offs, newest first (order=due: soonest SLA first), keyset-paginated")
    async def queue(
        self,
        caller: NamedDependency[UserCaller],
        team_id: FromQuery[uuid.UUID | None] = None,
        intent: FromQuery[Intent | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=CURSOR_MAX_CHARS)] = None,
        order: FromQuery[QueueOrder] = "newest",
    ) -> QueuePage:
        return await queue_page(
            account_id=caller.account_id,
            team_id=team_id,
            intent=intent,
            cursor=cursor,
            limit=limit,
            order=order,
        )
