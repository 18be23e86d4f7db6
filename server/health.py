"""Liveness and readiness: ``/health`` says the process answers, ``/ready`` that
Postgres and Redis answer it too."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from piccolo.engine import engine_finder

from server.problems import problem_response

CHECK_TIMEOUT_S = 2.0


@get("/health", sync_to_thread=False, include_in_schema=True, tags=["operations"])
def health() -> dict[str, str]:
    return {"status": "ok"}


async def _check_postgres() -> None:
    engine: Any = engine_finder()
    await engine.run_ddl("SELECT 1")


async def _check_redis(request: Request[Any, Any, Any]) -> None:
    await request.app.state.redis.ping()


async def _probe(check: Any) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:.0f} s"
    except Exception as exc:  # any failure means "down", said in words
        return f"{type(exc).__name__}: {exc}".strip()
    return "ok"


@get("/ready", tags=["operations"])
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    postgres, redis = await asyncio.gather(_probe(_check_postgres()), _probe(_check_redis(request)))
    checks = {"postgres": postgres, "redis": redis}
    down = [name for name, result in checks.items() if result != "ok"]
    if down:
        detail = "; ".join(f"{name.capitalize()} is unreachable ({checks[name]})" for name in down)
        return problem_response(503, detail, title="Not ready", checks=checks)
    return Response({"status": "ready", "checks": checks})
