"""The HTTP edge: what every HTTP request meets before Litestar routes it.

- A path holding a control character (``%00``, ``%0a``, …; any character Python calls
  not printable, so also U+2028 and the like) is refused with 400 here: nothing behind
  (static files, a log line) ever sees one.
- ``OPTIONS`` is answered here, 204, on any path, without auth: Litestar's generated
  ``OPTIONS`` handlers inherit the controller's guards, which read a caller the auth
  middleware never sets for ``OPTIONS`` (500). A CORS preflight to the API from an origin
  in ``BATON_ALLOWED_ORIGINS`` gets the CORS headers; any other ``OPTIONS`` gets none.
- Every API answer (``/api/v1/…``, problem details and unrouted 404s included) carries
  ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``, and, for a browser
  on an allowed origin, ``Access-Control-Allow-Origin``.

Litestar's ``CORSConfig`` does not fit: it answers a preflight from any other origin
with 400 (SPEC: 204 without the headers), covers the whole app rather than the API, and
leaves a plain ``OPTIONS`` to the guarded handlers. The API takes bearer tokens, never
cookies, so no ``Access-Control-Allow-Credentials``.

It wraps Litestar's own ASGI handler (``install_edge``), outside the per-route middleware,
because unrouted answers (404, 405) never pass route middleware.
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar import Litestar
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.controllers.handoffs import API_PREFIX

PREFLIGHT_MAX_AGE_S = 600
API_METHODS = ("GET", "POST", "PUT", "DELETE")
# What a browser front end sends: its token, JSON, the create's key, its own request id.
ALLOWED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
EXPOSED_RESPONSE_HEADERS = ("X-Request-ID", "Location", "Retry-After")

_API_PATH = API_PREFIX + "/"

_NO_STORE = (b"cache-control", b"no-store")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_VARY_ORIGIN = (b"vary", b"Origin")
_PROBLEM_JSON = (b"content-type", b"application/problem+json")

_BAD_PATH_BODY = (
    b'{"type":"about:blank","title":"Bad Request","status":400,'
    b'"detail":"The request path holds a control character."}'
)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _join(values: Iterable[str]) -> bytes:
    return ", ".join(values).encode("latin-1")


def edge_middleware(app: ASGIApp, allowed_origins: Iterable[str]) -> ASGIApp:
    allowed = frozenset(origin.encode("latin-1") for origin in allowed_origins)
    preflight_headers = [
        _VARY_ORIGIN,
        (b"access-control-allow-methods", _join(API_METHODS)),
        (b"access-control-allow-headers", _join(ALLOWED_REQUEST_HEADERS)),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
    ]
    cors_headers = [_VARY_ORIGIN, (b"access-control-expose-headers", _join(EXPOSED_RESPONSE_HEADERS))]

    def allowed_origin(scope: Scope) -> bytes | None:
        if not allowed:  # no CORS at all: skip the header scan
            return None
        origin = _header(scope, b"origin")
        return origin if origin in allowed else None

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path: str = scope["path"]
        # str.isprintable: C0, DEL, C1, separators and format characters (a third of
        # what a regex costs here).
        if not path.isprintable():
            await _answer(send, 400, [_PROBLEM_JSON, _NO_STORE, _NOSNIFF], _BAD_PATH_BODY)
            return
        is_api = path.startswith(_API_PATH) or path == API_PREFIX
        if scope.get("method") == "OPTIONS":
            headers = []
            if is_api:
                headers = [_NO_STORE, _NOSNIFF]
                if origin := allowed_origin(scope):
                    headers += [(b"access-control-allow-origin", origin), *preflight_headers]
            await _answer(send, 204, headers, b"")
            return
        if not is_api:
            await app(scope, receive, send)
            return
        origin = allowed_origin(scope)
        extra = [_NO_STORE, _NOSNIFF]
        if origin:
            extra += [(b"access-control-allow-origin", origin), *cors_headers]

        async def send_api_answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                # no-store wins over anything a handler said about caching.
                kept = [h for h in message.get("headers", ()) if h[0] != b"cache-control"]
                message["headers"] = [*kept, *extra]
            await send(message)

        await app(scope, receive, send_api_answer)

    return edge


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if body:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def install_edge(app: Litestar, allowed_origins: Iterable[str]) -> Litestar:
    """Puts the edge in front of ``app``'s own ASGI handler (exception handling, routing);
    lifespan events do not pass it."""
    app.asgi_handler = edge_middleware(app.asgi_handler, allowed_origins)
    return app
