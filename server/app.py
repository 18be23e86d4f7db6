"""``create_app()``: the one place where the web process is wired together."""

from __future__ import annotations

import logging

from litestar import Litestar
from litestar.datastructures import State

from server.edge import install_edge
from server.lifespan import frozen_startup_heap, inbox_guard, inbox_hub, postgres_pool, redis_client
from server.logs import configure_logging
from server.metrics import metrics, request_metrics_middleware
from server.openapi_document import document_problems
from server.problems import EXCEPTION_HANDLERS
from server.rate_limits import limit_writes, rate_limiter
from server.request_body import BatonRequest
from server.request_context import bind_caller, request_context_middleware
from server.routes import ROUTES
from server.schema_page import schema_openapi_config
from server.shutdown import with_shutdown_deadline
from settings import Settings, get_settings

log = logging.getLogger("baton.server")

API_VERSION = "1.0.0"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    missing = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url),
            ("BATON_JWT_SECRET", settings.jwt_secret),
        )
        if not value
    ]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not set: serve Baton with `baton serve` or `baton dev`, "
            "which start embedded services and keep a development secret"
        )
    configure_logging(settings)
    # The broker and actors the outbox hands jobs to: imported now (they bind to
    # REDIS_URL at import) rather than by the first create.
    import actors  # noqa: F401
    from pickup_links import links_on

    links_on(settings)  # says once when pick-up links are off (no BATON_PUBLIC_URL)

    app = Litestar(
        route_handlers=[*ROUTES, metrics],
        # Entered in this order, left in reverse, the leaving watched by a deadline.
        lifespan=[
            with_shutdown_deadline(
                postgres_pool, redis_client, rate_limiter, inbox_hub, inbox_guard, frozen_startup_heap
            )
        ],
        on_startup=[document_problems],
        # Outermost first: the request id is bound before anything logs, and the timing
        # includes everything below it.
        middleware=[request_context_middleware, request_metrics_middleware],
        before_request=bind_caller,
        guards=[limit_writes],
        # Logging is ours (server.logs), not Litestar's default queue handler.
        logging_config=None,
        state=State({"settings": settings}),
        exception_handlers=EXCEPTION_HANDLERS,
        # Every JSON body is read through it: unparsable or too deep is 400 (server.request_body).
        request_class=BatonRequest,
        openapi_config=schema_openapi_config(
            title="Baton",
            version=API_VERSION,
            description="Escalation hand-offs for MSP help desks.",
        ),
    )
    # In front of routing: OPTIONS, CORS, bad paths, the API's cache headers (server.edge).
    return install_edge(app, settings.allowed_origins)
