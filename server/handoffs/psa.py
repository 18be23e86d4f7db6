"""The PSA note of an escalation, pushed from the web process: ``POST /handoffs/{id}/psa-push``
and the legacy ``POST /sessions/{id}/escalate`` shim (escalate and push in one call).

The push itself is the workers' (actors.psa.push), run inline here: the same delivery
row, so a push here and the background one never post two notes. A push that failed for
now is retried by the background job; the answer says how this attempt went.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import redis.asyncio

from server.auth import UserCaller
from server.handoffs.create import create_handoff
from server.handoffs.read import handoff_not_found
from server.schemas.background import DocumentationOut, EscalateOut, EscalateRequest, PsaPushOut
from server.schemas.handoffs import HandoffCreate
from tables.queries.handoff_context import handoff_in_account


async def psa_push(account_id: uuid.UUID, handoff_id: uuid.UUID) -> PsaPushOut:
    # Imported here: actors binds to REDIS_URL at import (see server.handoffs.jobs).
    from actors.psa.push import repush

    if not await handoff_in_account(handoff_id=handoff_id, account_id=account_id):
        raise handoff_not_found()
    result, _, _ = await repush(handoff_id)
    return PsaPushOut(handoff_id=handoff_id, **msgspec.structs.asdict(result))


def _documentation(documentation: Any) -> DocumentationOut | None:
    if documentation is None:
        return None
    return msgspec.convert(msgspec.to_builtins(documentation), DocumentationOut)


async def legacy_escalate(
    *,
    caller: UserCaller,
    session_id: uuid.UUID,
    request: EscalateRequest,
    idempotency_key: str | None,
    redis_client: redis.asyncio.Redis,
    frontend_url: str | None,
) -> EscalateOut:
    from actors.psa.push import push

    created = await create_handoff(
        caller=caller,
        session_id=session_id,
        request=HandoffCreate(
            intent="escalate",
            engineer_notes=request.engineer_notes,
            priority=request.priority,
            target_user_id=request.target_user_id,
        ),
        idempotency_key=idempotency_key,
        redis_client=redis_client,
        frontend_url=frontend_url,
    )
    result, _, documentation = await push(created.handoff.id)
    return EscalateOut(
        handoff_id=created.handoff.id,
        documentation=_documentation(documentation),
        psa_push_status=result.psa_push_status,
        psa_push_error=result.psa_push_error,
        member_mapping_warning=result.member_mapping_warning,
    )
