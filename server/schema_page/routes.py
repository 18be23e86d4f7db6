"""The ``/schema`` router: the Swagger UI page, its assets, and the OpenAPI document.

Litestar's render plugins take asset URLs, but each writes the page with an inline
script (the start-up call, the whole document inlined) and an inline style, which a
policy without ``'unsafe-inline'`` refuses. ``SwaggerPage`` writes a page that only
links files of ours; the policy below covers everything under ``/schema``.

Swagger UI 5 needs no ``'unsafe-inline'``: its styles are set through the DOM, which a
policy allows (checked in Chromium: no violation while reading, expanding, and trying an
operation). It draws its icons as ``data:`` SVG images from its CSS, hence ``img-src
data:`` (an image cannot run script).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

SCHEMA_PATH = "/schema"
ASSETS_DIR = Path(__file__).parent / "assets"
ASSETS_PATH = f"{SCHEMA_PATH}/assets"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SCHEMA_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
]
# Revalidated on every load (ETag / Last-Modified), like the inbox page's assets.
REVALIDATE = CacheControlHeader(no_cache=True)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="icon" href="/inbox/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{assets}/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="{assets}/schema.css">
<script src="{assets}/swagger-ui/swagger-ui-bundle.js" defer></script>
<script src="{assets}/schema.js" defer></script>
</head>
<body>
<div id="swagger-ui"></div>
</body>
</html>
"""


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI from ``assets/``, started by ``assets/schema.js``; nothing inline."""

    def __init__(self) -> None:
        super().__init__(path="/swagger")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        return _PAGE.format(title=title, assets=ASSETS_PATH).encode()


async def _no_sniffing(response: Any) -> Any:
    # A static file is an ASGI response of its own: the router's response headers skip it.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def schema_openapi_config(**config: Any) -> OpenAPIConfig:
    """``OpenAPIConfig`` serving the page at ``/schema`` (and ``/schema/swagger``), the
    document at ``/schema/openapi.json``, and the assets, all under the policy."""
    assets = create_static_files_router(
        path="/assets",
        directories=[ASSETS_DIR],
        name="schema_assets",
        cache_control=REVALIDATE,
        after_request=_no_sniffing,
        include_in_schema=False,
    )
    router = Router(
        path=SCHEMA_PATH,
        route_handlers=[assets],
        response_headers=SCHEMA_HEADERS,
        include_in_schema=False,
    )
    return OpenAPIConfig(path=SCHEMA_PATH, openapi_router=router, render_plugins=[SwaggerPage()], **config)
