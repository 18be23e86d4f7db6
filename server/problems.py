"""Every error as RFC 9457 problem details (``application/problem+json``).

Raise ``Problem`` from domain code; Litestar's own exceptions (validation, 404,
405, …) are translated by the handlers below, so no error leaves as anything else.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

log = logging.getLogger("baton.server")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(HTTPException):
    """An answer of ``status`` with a human ``detail`` and optional extra members."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.title = title or HTTPStatus(status_code).phrase
        self.members = extra


def problem_response(
    status_code: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    body.update(extra)
    return Response(body, status_code=status_code, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _on_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return problem_response(exc.status_code, exc.detail, title=exc.title, headers=exc.headers, **exc.members)


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    return problem_response(400, exc.detail or "The request is not valid.", errors=errors)


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra = exc.extra if isinstance(exc.extra, dict) else {}
    return problem_response(exc.status_code, exc.detail, headers=exc.headers, **extra)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "Something went wrong on our side; it has been logged.")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Problem: _on_problem,
    ValidationException: _on_validation,
    HTTPException: _on_http,
    Exception: _on_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "MediaType", "Problem", "problem_response"]
