"""The pick-up POST's two walls against cross-site requests: same origin, and the page's token.

**Same origin.** A browser's POST says where it comes from: ``Sec-Fetch-Site`` (when
sent) must be ``same-origin``, and ``Origin`` (else ``Referer``) must name this host, as
the request's ``Host`` or ``BATON_PUBLIC_URL`` has it. A POST naming neither is refused:
every browser sends ``Origin`` with a form's POST (the page's ``Referrer-Policy:
same-origin`` keeps it from being ``null``).

**The page's anti-forgery token** (stateless, no server-side store): the GET page sets a
random nonce as a cookie (``HttpOnly; SameSite=Strict; Path=/pickup``) and puts
``HMAC(form key, link token, nonce)`` in the form. A POST must bring both, matching. A
page on another site can neither read the cookie nor compute the field, and
``SameSite=Strict`` keeps the browser from sending the cookie with its POST at all. The
form key is HMAC-SHA256(``BATON_JWT_SECRET``, ``"baton pickup form v1"``), separate from
the JWTs' and the links' keys. One nonce per browser serves every link: a second GET
keeps the nonce its cookie already has, so two open pick-up pages both still work.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

COOKIE = "baton_pickup"
COOKIE_PATH = "/pickup"
COOKIE_MAX_AGE_S = 24 * 3600
FIELD = "csrf"
FORM_KEY_LABEL = b"baton pickup form v1"
NONCE_BYTES = 16
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")
FIELD_MAX_CHARS = 64


@functools.lru_cache(maxsize=4)
def _form_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), FORM_KEY_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def nonce_of(cookies: Mapping[str, str]) -> str | None:
    """The browser's nonce, when its cookie holds one of ours."""
    nonce = cookies.get(COOKIE)
    return nonce if nonce is not None and _NONCE.fullmatch(nonce) else None


def new_nonce() -> str:
    return _b64(secrets.token_bytes(NONCE_BYTES))


def form_token(secret: str, link_token: str, nonce: str) -> str:
    mac = hmac.new(_form_key(secret), f"{link_token}\x00{nonce}".encode(), hashlib.sha256)
    return _b64(mac.digest())


def form_token_valid(secret: str, link_token: str, cookies: Mapping[str, str], field: str | None) -> bool:
    nonce = nonce_of(cookies)
    if nonce is None or not field or len(field) > FIELD_MAX_CHARS:
        return False
    return hmac.compare_digest(field.encode(), form_token(secret, link_token, nonce).encode())


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def same_origin(headers: Mapping[str, str], public_url: str | None) -> bool:
    """True when the request says it comes from a page of this host."""
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return False
    came_from = _netloc(source)
    if came_from is None:
        return False
    ours = {(headers.get("host") or "").lower()}
    if public_url and (public := _netloc(public_url)):
        ours.add(public)
    return came_from in ours
