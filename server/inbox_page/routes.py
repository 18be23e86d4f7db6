"""``GET /inbox`` (the page) and ``/inbox/assets/*`` (its CSS, ES modules and icon).

The page is served with a strict Content-Security-Policy: scripts, styles and
connections from our own origin only, nothing inline. Everything the page shows from
users goes through ``textContent``; the policy is the second wall should that slip.
The token never reaches the server in a URL: ``baton dev`` puts it in the fragment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import MediaType, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

PAGE_FILE = Path(__file__).parent / "page.html"
ASSETS_DIR = Path(__file__).parent / "assets"
ASSETS_PATH = "/inbox/assets"

# 'self' in connect-src also allows ws:/wss: to our own host (CSP Level 3).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # No URL of ours, with or without a token fragment, is ever sent elsewhere.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# Revalidated on every load (ETag / Last-Modified): a deploy's new page and modules are
# picked up at once, and they are small enough that a 304 costs nothing.
REVALIDATE = CacheControlHeader(no_cache=True)


@get("/inbox", include_in_schema=False, sync_to_thread=False, cache_control=REVALIDATE)
def inbox_page() -> Response[bytes]:
    # Read per request: a few kilobytes, and an edited page shows without a restart.
    return Response(PAGE_FILE.read_bytes(), media_type=MediaType.HTML, headers=PAGE_HEADERS)


async def _no_sniffing(response: Any) -> Any:
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


inbox_assets = create_static_files_router(
    path=ASSETS_PATH,
    directories=[ASSETS_DIR],
    name="inbox_assets",
    cache_control=REVALIDATE,
    after_request=_no_sniffing,
)

INBOX_PAGE_ROUTES = [inbox_page, inbox_assets]
