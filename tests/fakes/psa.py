"""Local ConnectWise Manage, Autotask and HaloPSA APIs that keep the notes posted to them.

Each checks what the real one checks (paths, auth headers, body shapes) and answers 401 /
400 / 404 like it when something is off. ``fail_next(500, …)`` makes the next note
creations fail with those statuses; ``hang_s`` delays every answer (a PSA that hangs).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.server import ThreadedServer, recorded


@dataclass
class StoredNote:
    id: int
    ticket_id: int
    text: str
    fields: dict[str, Any]


class FakePsa(ThreadedServer):
    kind = ""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[StoredNote] = []
        self._fail: list[int] = []
        self._lock2 = threading.Lock()
        self._ids = itertools.count(9001)
        self.hang_s = 0.0

    def fail_next(self, *statuses: int) -> None:
        with self._lock2:
            self._fail.extend(statuses)

    def _take_failure(self) -> int | None:
        with self._lock2:
            return self._fail.pop(0) if self._fail else None

    def _store(self, ticket_id: int, text: str, fields: dict[str, Any]) -> StoredNote:
        with self._lock2:
            note = StoredNote(next(self._ids), ticket_id, text, fields)
            self.notes.append(note)
            return note

    def notes_on(self, ticket_id: int) -> list[StoredNote]:
        with self._lock2:
            return [n for n in self.notes if n.ticket_id == ticket_id]

    async def _hang(self) -> None:
        if self.hang_s:
            await asyncio.sleep(self.hang_s)


# ------------------------------------------------------------------ ConnectWise Manage


class FakeConnectWise(FakePsa):
    kind = "connectwise"
    ROOT = "/v4_6_release/apis/3.0"

    def __init__(self) -> None:
        super().__init__()
        self.credentials = {
            "company_id": "baton_msp",
            "public_key": "pubKEY123",
            "private_key": "privKEY456",
            "client_id": "0b3c1f8e-cw-client",
        }

    def _authorised(self, request: web.Request) -> bool:
        c = self.credentials
        expected = base64.b64encode(
            f"{c['company_id']}+{c['public_key']}:{c['private_key']}".encode()
        ).decode()
        return (
            request.headers.get("Authorization") == f"Basic {expected}"
            and request.headers.get("clientId") == c["client_id"]
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.ROOT + "/service/tickets/{ticket}/notes", self._add)
        app.router.add_get(self.ROOT + "/service/tickets/{ticket}/notes", self._list)

    async def _add(self, request: web.Request) -> web.Response:
        await self._hang()
        if not self._authorised(request):
            return web.json_response({"code": "Unauthorized", "message": "bad credentials"}, status=401)
        failure = self._take_failure()
        if failure:
            return web.json_response({"code": "Error", "message": "scripted failure"}, status=failure)
        body = recorded(request).json
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            return web.json_response({"code": "InvalidObject", "message": "text is required"}, status=400)
        if not any(body.get(f) for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")):
            return web.json_response(
                {"code": "InvalidObject", "message": "a note flag is required"}, status=400
            )
        note = self._store(int(request.match_info["ticket"]), body["text"], body)
        return web.json_response({"id": note.id, "ticketId": note.ticket_id, "text": note.text}, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"code": "Unauthorized", "message": "bad credentials"}, status=401)
        notes = sorted(self.notes_on(int(request.match_info["ticket"])), key=lambda n: -n.id)
        return web.json_response([{"id": n.id, "ticketId": n.ticket_id, "text": n.text} for n in notes])


# ------------------------------------------------------------------ Autotask


class FakeAutotask(FakePsa):
    kind = "autotask"
    LOOKUP = "/atservicesrest/v1.0"
    ZONE = "/zone5/ATServicesRest/v1.0"
    # Tenant-specific picklist values: odd on purpose, so only values read from the API fit.
    NOTE_TYPES: ClassVar[list[dict[str, Any]]] = [
        {"value": "1", "label": "Task Summary", "isDefaultValue": False, "isActive": True},
        {"value": "3", "label": "Task Notes", "isDefaultValue": True, "isActive": True},
        {"value": "17", "label": "Internal Escalation Note", "isDefaultValue": False, "isActive": True},
    ]
    PUBLISH: ClassVar[list[dict[str, Any]]] = [
        {"value": "1", "label": "All Autotask Users", "isDefaultValue": True, "isActive": True},
        {"value": "4", "label": "Internal Project Team", "isDefaultValue": False, "isActive": True},
    ]

    def __init__(self) -> None:
        super().__init__()
        self.credentials = {
            "username": "api-user@msp.example",
            "secret": "s3cr3t-AT",
            "integration_code": "TRACKING-CODE-42",
        }
        # The zone the lookup answers with (default: this fake's own zone path).
        self.zone_root: str | None = None

    @property
    def lookup_url(self) -> str:
        return f"{self.url}/atservicesrest"

    def _authorised(self, request: web.Request) -> bool:
        c = self.credentials
        return (
            request.headers.get("ApiIntegrationCode") == c["integration_code"]
            and request.headers.get("UserName") == c["username"]
            and request.headers.get("Secret") == c["secret"]
        )

    @staticmethod
    def _denied() -> web.Response:
        return web.json_response({"errors": ["Unauthorized"]}, status=401)

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.LOOKUP + "/zoneInformation", self._zone)
        app.router.add_get(self.ZONE + "/TicketNotes/entityInformation/fields", self._fields)
        app.router.add_post(self.ZONE + "/Tickets/{ticket}/Notes", self._add)
        app.router.add_get(self.ZONE + "/TicketNotes/query", self._query)

    async def _zone(self, request: web.Request) -> web.Response:
        if request.query.get("user") != self.credentials["username"]:
            return web.json_response({"errors": ["Zone information could not be determined"]}, status=500)
        return web.json_response(
            {
                "zoneName": "Fake Zone",
                "url": self.zone_root or f"{self.url}/zone5/ATServicesRest/",
                "webUrl": self.url,
                "ci": 5,
            }
        )

    async def _fields(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._denied()
        return web.json_response(
            {
                "fields": [
                    {"name": "description", "dataType": "string", "isPickList": False},
                    {
                        "name": "noteType",
                        "dataType": "integer",
                        "isPickList": True,
                        "picklistValues": self.NOTE_TYPES,
                    },
                    {
                        "name": "publish",
                        "dataType": "integer",
                        "isPickList": True,
                        "picklistValues": self.PUBLISH,
                    },
                ]
            }
        )

    async def _add(self, request: web.Request) -> web.Response:
        await self._hang()
        if not self._authorised(request):
            return self._denied()
        failure = self._take_failure()
        if failure:
            return web.json_response({"errors": ["scripted failure"]}, status=failure)
        body = recorded(request).json
        ticket = int(request.match_info["ticket"])
        valid_types = {int(v["value"]) for v in self.NOTE_TYPES}
        valid_publish = {int(v["value"]) for v in self.PUBLISH}
        if (
            not isinstance(body, dict)
            or body.get("ticketID") != ticket
            or not body.get("description")
            or body.get("noteType") not in valid_types
            or body.get("publish") not in valid_publish
        ):
            return web.json_response({"errors": ["invalid TicketNote"]}, status=400)
        note = self._store(ticket, body["description"], body)
        return web.json_response({"itemId": note.id})

    async def _query(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._denied()
        search = json.loads(request.query.get("search", "{}"))
        ticket, needle = None, ""
        for item in search.get("filter", []):
            if item.get("field") == "ticketID":
                ticket = int(item["value"])
            if item.get("field") == "description" and item.get("op") == "contains":
                needle = str(item["value"])
        found = [n for n in self.notes_on(ticket or -1) if needle in n.text]
        return web.json_response(
            {
                "items": [{"id": n.id, "ticketID": n.ticket_id, "description": n.text} for n in found],
                "pageDetails": {},
            }
        )


# ------------------------------------------------------------------ HaloPSA


class FakeHaloPsa(FakePsa):
    kind = "halopsa"
    TOKEN = "halo-access-token-xyz"

    def __init__(self) -> None:
        super().__init__()
        self.credentials = {"client_id": "halo-client", "client_secret": "halo-secret", "tenant": "msp"}
        self.tokens_issued = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/auth/token", self._token)
        app.router.add_post("/api/Actions", self._add)
        app.router.add_get("/api/Actions", self._list)

    async def _token(self, request: web.Request) -> web.Response:
        form = recorded(request).form
        c = self.credentials
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != c["client_id"]
            or form.get("client_secret") != c["client_secret"]
            or not form.get("scope")
            or request.query.get("tenant") != c["tenant"]
        ):
            return web.json_response({"error": "invalid_client"}, status=400)
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": self.TOKEN, "token_type": "Bearer", "expires_in": 3600, "scope": form["scope"]}
        )

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.TOKEN}"

    async def _add(self, request: web.Request) -> web.Response:
        await self._hang()
        if not self._authorised(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        failure = self._take_failure()
        if failure:
            return web.json_response({"message": "scripted failure"}, status=failure)
        body = recorded(request).json
        if not isinstance(body, list) or len(body) != 1 or not isinstance(body[0], dict):
            return web.json_response({"message": "expected an array of actions"}, status=400)
        action = body[0]
        if (
            not isinstance(action.get("ticket_id"), int)
            or not action.get("note")
            or not action.get("outcome")
        ):
            return web.json_response({"message": "ticket_id, note and outcome are required"}, status=400)
        note = self._store(action["ticket_id"], action["note"], action)
        return web.json_response({"id": note.id, **action}, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        notes = self.notes_on(int(request.query.get("ticket_id", "-1")))
        return web.json_response(
            {
                "record_count": len(notes),
                "actions": [{"id": n.id, "ticket_id": n.ticket_id, "note": n.text} for n in notes],
            }
        )
