"""A real HTTP server on a free port, run by aiohttp on its own loop in a thread.

Tests are mostly synchronous (they wait on real worker processes with ``wait_for``), so a
fake must keep answering while the test thread sleeps: hence its own thread and loop.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from cli.processes import free_port

START_TIMEOUT_S = 10.0
# A fake holding a slow answer must not hold up the test's teardown.
SHUTDOWN_TIMEOUT_S = 0.5
T = TypeVar("T")


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


RECORDED = web.RequestKey("recorded", Recorded)


def recorded(request: web.Request) -> Recorded:
    """The request as recorded (its body already read and parsed)."""
    return request[RECORDED]


class ThreadedServer:
    """Subclasses add routes in ``routes(app)``; ``start()`` serves them on ``self.url``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Set (with an https:// url) before start() to serve TLS.
        self.ssl_context: ssl.SSLContext | None = None
        self.requests: list[Recorded] = []
        self.cut_off: list[str] = []
        """Requests whose client went away before their body was read."""
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=type(self).__name__)
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> ThreadedServer:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._record])
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context).start()

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        try:
            body = await request.read()
        except (ConnectionError, asyncio.CancelledError) as exc:
            # The client gave up (its timeout) before we read its request: it was never
            # "received", but a test explaining a retry wants to know it arrived.
            with self._lock:
                self.cut_off.append(f"{request.method} {request.path}: {type(exc).__name__}")
            raise
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
        )
        content_type = request.headers.get("Content-Type", "")
        if body and "json" in content_type:
            try:
                recorded.json = await request.json()
            except ValueError:
                recorded.json = None
        elif body and "x-www-form-urlencoded" in content_type:
            recorded.form = {k: str(v) for k, v in (await request.post()).items()}
        with self._lock:
            self.requests.append(recorded)
        request[RECORDED] = recorded
        response: web.StreamResponse = await handler(request)
        return response

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(START_TIMEOUT_S)

    def requests_to(self, method: str, path_part: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)

    def __enter__(self: Any) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
