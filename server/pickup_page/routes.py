"""``GET`` and ``POST /pickup/{token}``: an e-mail's pick-up link, outside ``/api/v1``.

``GET`` shows the hand-off (summary, priority, who escalated) and a Pick up button, and
changes nothing (``server/handoffs/pickup.py``: mail scanners fetch every link). Its form
``POST``s to the same URL, which must come from this origin with the page's anti-forgery
token (``forgery.py``); only then is the link read against the database and the claim
made, as the link's recipient. The answers: won 200 (the briefing, or a note that it is
on its way), lost 409 (who and when), expired 410, not allowed 403; a link Baton did not
make 404; a POST from elsewhere or without the page's token 403, nothing done.

Each page is served under a policy as strict as the inbox's (no script at all; a form
may post only to ourselves), never cached (it holds a capability), never framed. The
token is a capability: ``server/logs.py`` redacts ``/pickup/<token>`` in every log line.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.params import FromPath

from server.handoffs import pickup
from server.handoffs.pickup import Look, PickupRefused
from server.pickup_page import forgery, views

PICKUP_PATH = "/pickup/{token:str}"
# A form of one field: anything larger is not our page's.
FORM_MAX_BYTES = 1024

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The link's URL is never sent to another site; to ourselves it is, so the form's
    # POST carries a real Origin and Referer (with no-referrer, a POST's Origin is "null").
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _answer(
    body: bytes, status: int, cookies: list[Cookie] | None = None, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        body,
        status_code=status,
        media_type=MediaType.HTML,
        headers={**PAGE_HEADERS, **(headers or {})},
        cookies=cookies,
    )


def _refused(refused: PickupRefused) -> Response[bytes]:
    return _answer(views.refused_view(refused.reason), refused.status)


def _secure(request: Request[Any, Any, Any], public_url: str | None) -> bool:
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https://"))


def _look_page(request: Request[Any, Any, Any], state: State, token: str, look: Look) -> Response[bytes]:
    taken = views.taken_by_other(look)
    if taken is not None:
        return _answer(views.lost_view(taken), 200)
    if look.held_by_caller:
        return _answer(views.won_view(look, token), 200)
    settings = state.settings
    nonce = forgery.nonce_of(request.cookies) or forgery.new_nonce()
    cookie = Cookie(
        key=forgery.COOKIE,
        value=nonce,
        path=forgery.COOKIE_PATH,
        max_age=forgery.COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings.public_url),
    )
    form_token = forgery.form_token(settings.jwt_secret, token, nonce)
    return _answer(views.open_view(look, form_token), 200, cookies=[cookie])


@get(PICKUP_PATH, include_in_schema=False)
async def pickup_page(request: Request[Any, Any, Any], state: State, token: FromPath[str]) -> Response[bytes]:
    """The link's page: reads, never writes."""
    try:
        look = await pickup.look(state.settings.jwt_secret, token)
    except PickupRefused as refused:
        return _refused(refused)
    return _look_page(request, state, token, look)


@post(PICKUP_PATH, include_in_schema=False, request_max_body_size=FORM_MAX_BYTES)
async def pickup_claim(
    request: Request[Any, Any, Any], state: State, token: FromPath[str]
) -> Response[bytes]:
    """Press Pick up: the claim as the link's recipient, when this origin's page sent it."""
    settings = state.settings
    if not forgery.same_origin(request.headers, settings.public_url):
        return _answer(views.refused_view("forged"), 403)
    try:
        link = pickup.read_link(settings.jwt_secret, token)
    except PickupRefused as refused:
        return _refused(refused)
    form = await request.form()
    field = form.get(forgery.FIELD)
    if not forgery.form_token_valid(
        settings.jwt_secret, token, request.cookies, field if isinstance(field, str) else None
    ):
        return _answer(views.refused_view("forged"), 403)
    # The recipient's writes, counted as their API writes are.
    decision = await state.rate_limiter.check(
        "writes", f"user:{link.user_id}", settings.rate_limit_writes_per_minute
    )
    if not decision.allowed:
        retry_after = {"Retry-After": str(decision.retry_after_s)}
        return _answer(views.too_many_view(decision.retry_after_s), 429, headers=retry_after)
    try:
        outcome = await pickup.pick_up(link, state.redis)
    except PickupRefused as refused:
        return _refused(refused)
    if isinstance(outcome, pickup.Lost):
        return _answer(views.lost_view(outcome), 409)
    return _answer(views.won_view(outcome, token), 200)


PICKUP_ROUTES = [pickup_page, pickup_claim]
