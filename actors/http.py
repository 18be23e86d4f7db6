"""One httpx client per event loop for the webhooks and PSA APIs, with the send timeout."""

from __future__ import annotations

import asyncio
import weakref

import httpx

from settings import get_settings

USER_AGENT = "Baton/1.0 (+escalation hand-offs)"
MAX_CONNECTIONS = 50

# Weak: a loop that is gone (a finished test, say) takes its client with it.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def http_client() -> httpx.AsyncClient:
    """Shared by every actor on this loop (a client's pool belongs to the loop that made it).

    No redirects: a webhook or PSA URL that redirects is misconfigured, and following it
    would send credentials somewhere nobody chose.
    """
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            timeout=get_settings().delivery_timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
        )
        _clients[loop] = client
    return client


def describe_response(response: httpx.Response, max_chars: int = 200) -> str:
    """ "HTTP 500: <body start>": for last_error, never with the URL (a webhook URL is a secret)."""
    body = response.text.strip().replace("\n", " ")[:max_chars]
    return f"HTTP {response.status_code}" + (f": {body}" if body else "")


def is_permanent(status_code: int) -> bool:
    """A 4xx other than timeout / conflict / rate limit: the same request will fail again."""
    return 400 <= status_code < 500 and status_code not in (408, 409, 425, 429)
