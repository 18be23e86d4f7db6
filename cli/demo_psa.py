"""The demo account's PSA: a small HaloPSA that ``baton dev`` runs, so the demo shows a
note pushed to a ticket rather than a push that fails forever.

It speaks what Baton's HaloPSA adapter (actors/psa/halopsa.py) calls, as HaloPSA does:
``POST /auth/token`` (client credentials, a form) answers a bearer token; ``POST
/api/Actions`` (a JSON array of actions) stores each as a note and answers them with ids;
``GET /api/Actions?ticket_id=`` lists a ticket's notes. Notes are kept in memory and
written to ``{data dir}/demo-psa/ticket-<id>.txt`` for whoever wants to read them; each
is logged. It listens on 127.0.0.1 only, in a thread of ``baton dev``, and its address
is the only loopback one the dev's outbound gate allows (BATON_OUTBOUND_ALLOW_ENDPOINTS).
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("baton.demo_psa")

TOKEN_LIFETIME_S = 3600
BODY_MAX_BYTES = 1_000_000
NOTES_FOLDER = "demo-psa"


class DemoPsa:
    """The server and what it holds; ``start()`` serves in a daemon thread."""

    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        self.folder = data_dir / NOTES_FOLDER
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self._tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="demo-psa", daemon=True).start()
        log.info("demo PSA (HaloPSA) listening on %s; notes go to %s", self.base_url, self.folder)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return token

    def authorised(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        with self._lock:
            return scheme.lower() == "bearer" and token in self._tokens

    def add_note(self, action: dict[str, Any]) -> dict[str, Any]:
        ticket = int(action["ticket_id"])
        with self._lock:
            note = {**action, "id": next(self._ids)}
            self.notes.setdefault(ticket, []).append(note)
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"ticket-{ticket}.txt", "a") as file:
            file.write(f"--- note {note['id']} ---\n{note.get('note', '')}\n\n")
        log.info("demo PSA: note %s added to ticket %s", note["id"], ticket)
        return note

    def notes_of(self, ticket: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.notes.get(ticket, []))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        psa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # each note is logged above; the request lines would only add noise

            def _answer(self, status: HTTPStatus, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(min(length, BODY_MAX_BYTES))

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                if path == "/auth/token":
                    form = parse_qs(self._body().decode(errors="replace"))
                    if form.get("grant_type") != ["client_credentials"] or not form.get("client_id"):
                        self._answer(HTTPStatus.BAD_REQUEST, {"error": "invalid_request"})
                        return
                    token = psa.issue_token()
                    self._answer(HTTPStatus.OK, {"access_token": token, "expires_in": TOKEN_LIFETIME_S})
                    return
                if path == "/api/Actions":
                    if not psa.authorised(self.headers.get("Authorization")):
                        self._answer(HTTPStatus.UNAUTHORIZED, {"error": "invalid token"})
                        return
                    try:
                        actions = json.loads(self._body())
                        created = [psa.add_note(action) for action in actions]
                    except (ValueError, TypeError, KeyError):
                        self._answer(HTTPStatus.BAD_REQUEST, {"error": "expected an array of actions"})
                        return
                    self._answer(HTTPStatus.CREATED, created)
                    return
                self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/api/Actions":
                    self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})
                    return
                if not psa.authorised(self.headers.get("Authorization")):
                    self._answer(HTTPStatus.UNAUTHORIZED, {"error": "invalid token"})
                    return
                ticket = (parse_qs(parts.query).get("ticket_id") or ["0"])[0]
                notes = psa.notes_of(int(ticket)) if ticket.isdigit() else []
                self._answer(HTTPStatus.OK, {"actions": notes})

        return Handler
