"""The host app's side of the API: it writes people, teams, channels, PSA connections and
sessions (service token only); sessions can be read back by anyone of the account."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from server.auth import HostAppCaller, host_app_only, provide_account_id, provide_host_app
from server.host_app.integrations import put_channel, put_psa_connection
from server.host_app.people import put_team, put_user
from server.host_app.sessions import get_session, put_session
from server.schemas.host_app import (
    ChannelOut,
    ChannelPut,
    PsaConnectionOut,
    PsaConnectionPut,
    SessionOut,
    SessionPut,
    TeamOut,
    TeamPut,
    UserOut,
    UserPut,
)


def _put_answer(content: Any, created: bool) -> Response[Any]:
    return Response(content, status_code=201 if created else 200)


class HostAppController(Controller):
    """``PUT`` the whole resource: 201 when it was created, 200 when it was replaced."""

    tags = ("host app",)
    guards = (host_app_only,)
    dependencies = {"caller": Provide(provide_host_app, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @put("/users/{user_id:uuid}", summary="Create or replace a user")
    async def put_user(
        self, caller: NamedDependency[HostAppCaller], user_id: FromPath[uuid.UUID], data: JSONBody[UserPut]
    ) -> Response[UserOut]:
        return _put_answer(*await put_user(caller.account_id, user_id, data))

    @put("/teams/{team_id:uuid}", summary="Create or replace a team")
    async def put_team(
        self, caller: NamedDependency[HostAppCaller], team_id: FromPath[uuid.UUID], data: JSONBody[TeamPut]
    ) -> Response[TeamOut]:
        return _put_answer(*await put_team(caller.account_id, team_id, data))

    @put("/channels/{channel_id:uuid}", summary="Create or replace a Slack or Teams webhook")
    async def put_channel(
        self,
        caller: NamedDependency[HostAppCaller],
        channel_id: FromPath[uuid.UUID],
        data: JSONBody[ChannelPut],
    ) -> Response[ChannelOut]:
        return _put_answer(*await put_channel(caller.account_id, channel_id, data))

    @put("/psa-connections/{connection_id:uuid}", summary="Create or replace a PSA connection")
    async def put_psa_connection(
        self,
        caller: NamedDependency[HostAppCaller],
        connection_id: FromPath[uuid.UUID],
        data: JSONBody[PsaConnectionPut],
    ) -> Response[PsaConnectionOut]:
        return _put_answer(*await put_psa_connection(caller.account_id, connection_id, data))

    @put("/sessions/{session_id:uuid}", summary="Create or replace a session with its steps and branches")
    async def put_session(
        self,
        caller: NamedDependency[HostAppCaller],
        session_id: FromPath[uuid.UUID],
        data: JSONBody[SessionPut],
    ) -> Response[SessionOut]:
        return _put_answer(*await put_session(caller.account_id, session_id, data))


class SessionReadController(Controller):
    tags = ("sessions",)
    dependencies = {"account_id": Provide(provide_account_id, sync_to_thread=False)}  # noqa: RUF012 (Litestar deep-copies it)

    @get("/sessions/{session_id:uuid}", summary="A session with its steps, branches and messages")
    async def get_session(
        self, account_id: NamedDependency[uuid.UUID], session_id: FromPath[uuid.UUID]
    ) -> SessionOut:
        return await get_session(account_id, session_id)
