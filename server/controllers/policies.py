"""Escalation policies: who is told of an open escalation, on which channels, how long
after, and its SLA (SPEC second edition). Kept by the host app (service token) or an
owner or admin of the account; anyone else is 403, another account's policy 404."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, delete, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from server.auth import host_app_or_overseer, provide_account_id
from server.policies.store import delete_policy, get_policy, list_policies, put_policy
from server.schemas.policies import PoliciesOut, PolicyOut
from tables.policy_shapes import PolicyPut

POLICIES_TAG = "escalation policies"


class EscalationPolicyController(Controller):
    tags = (POLICIES_TAG,)
    guards = (host_app_or_overseer,)
    dependencies = {"account_id": Provide(provide_account_id, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @put("/escalation-policies/{policy_id:uuid}", summary="Create or replace an escalation policy")
    async def put_policy(
        self,
        account_id: NamedDependency[uuid.UUID],
        policy_id: FromPath[uuid.UUID],
        data: JSONBody[PolicyPut],
    ) -> Response[PolicyOut]:
        policy, created = await put_policy(account_id, policy_id, data)
        return Response(policy, status_code=201 if created else 200)

    @get("/escalation-policies", summary="The account's escalation policies, by name")
    async def list_policies(self, account_id: NamedDependency[uuid.UUID]) -> PoliciesOut:
        return await list_policies(account_id)

    @get("/escalation-policies/{policy_id:uuid}", summary="An escalation policy")
    async def get_policy(
        self, account_id: NamedDependency[uuid.UUID], policy_id: FromPath[uuid.UUID]
    ) -> PolicyOut:
        return await get_policy(account_id, policy_id)

    @delete("/escalation-policies/{policy_id:uuid}", summary="Remove an escalation policy")
    async def delete_policy(
        self, account_id: NamedDependency[uuid.UUID], policy_id: FromPath[uuid.UUID]
    ) -> None:
        await delete_policy(account_id, policy_id)
