"""``GET /metrics``: Prometheus text for this web replica.

- ``baton_http_request_duration_seconds{method, route, status}``: a histogram labelled
  by the route *template* (``/api/v1/handoffs/{handoff_id:uuid}``), never the raw path,
  so the number of series stays bounded whatever ids callers send. Paths that match no
  route never reach route middleware and are not counted.
- ``baton_http_requests_in_progress{method}``.
- ``baton_inbox_*``: the hub's counters and gauges (``inbox.HubStats``), read at scrape.
- ``baton_rate_limit_fail_open_total``: writes let through while Redis was unreachable.
- The client library's process metrics (CPU, memory, open files).

It answers only to ``Authorization: Bearer $BATON_METRICS_TOKEN`` and only at its exact
path (the raw path, before percent-decoding and Litestar's slash normalizing: ``//metrics``,
``/%6detrics`` and ``/metrics%2F`` are 404). Unset token: 404, as if it did not exist. A
missing or wrong token: 401 with a challenge, not 404: the endpoint is documented, so
hiding it hides nothing, and a scrape misconfigured in Prometheus then says "401" rather
than looking like a wrong address. The reverse proxy in ``compose.yaml`` answers 404 for it
as well: Prometheus scrapes the replicas on the compose network.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from server.problems import Problem

METRICS_PATH = "/metrics"
_METRICS_RAW_PATH = METRICS_PATH.encode()
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="baton-metrics"'}

REQUEST_DURATION = Histogram(
    "baton_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge("baton_http_requests_in_progress", "HTTP requests being answered.", ["method"])


def request_metrics_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware timing each HTTP request to the end of its response body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        status = 500  # an exception that escapes before any response is sent
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_PROGRESS.labels(method).inc()
        try:
            await app(scope, receive, timed_send)
        finally:
            IN_PROGRESS.labels(method).dec()
            route = scope.get("path_template") or "unmatched"
            REQUEST_DURATION.labels(method, route, str(status)).observe(time.perf_counter() - started)

    return middleware


# HubStats field -> (help, kind); exported as baton_inbox_<field>.
_HUB_METRICS: dict[str, tuple[str, str]] = {
    "subscribers": ("Inbox websockets subscribed on this replica.", "gauge"),
    "events_fanned_out": ("Event frames queued to sockets (per socket).", "counter"),
    "events_refilled": ("Of those, queued by a refill after a reconnect.", "counter"),
    "gaps_refilled": ("Refills that found events the subscription missed.", "counter"),
    "duplicates_skipped": ("Frames a socket already had, skipped.", "counter"),
    "slow_subscribers_dropped": ("Sockets closed for reading too slowly.", "counter"),
    "resyncs": ("Sockets told to refetch: their since was trimmed away.", "counter"),
    "reconnects": ("Redis subscriptions re-established after a loss.", "counter"),
    "connection_failures": ("Failed Redis subscription attempts.", "counter"),
}


class ReplicaCollector(Collector):
    """The hub's stats and the limiter's fail-opens of one app, read when scraped."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        hub = getattr(self._state, "hub", None)
        if hub is not None:
            for field, (help_text, kind) in _HUB_METRICS.items():
                family = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
                yield family(f"baton_inbox_{field}", help_text, value=getattr(hub.stats, field))
            live = int(hub.connected.is_set())
            yield GaugeMetricFamily(
                "baton_inbox_redis_connected", "1 while the hub's subscription is live.", value=live
            )
        limiter = getattr(self._state, "rate_limiter", None)
        if limiter is not None:
            yield CounterMetricFamily(
                "baton_rate_limit_fail_open",
                "Calls let through unlimited because Redis was unreachable.",
                value=limiter.fail_opens,
            )


def _check_scraper(request: Request[Any, Any, Any]) -> None:
    token: str | None = request.app.state.settings.metrics_token
    if not token or request.scope.get("raw_path", b"") != _METRICS_RAW_PATH:
        raise NotFoundException()
    scheme, _, supplied = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), token.encode()):
        raise Problem(401, "Send Authorization: Bearer <BATON_METRICS_TOKEN>.", headers=CHALLENGE)


@get(METRICS_PATH, include_in_schema=False, tags=["operations"])
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    _check_scraper(request)
    replica = CollectorRegistry()
    replica.register(ReplicaCollector(request.app.state))
    body = generate_latest(REGISTRY) + generate_latest(replica)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
