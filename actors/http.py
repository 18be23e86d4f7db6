"""The one way out to an account's URLs (webhooks, PSA APIs): ``call``.

Every request to a customer-configured URL goes through ``call``, which applies SPEC's
destination rule (``actors.outbound``) and turns whatever goes wrong into a short,
sanitized ``SendError`` — a status line, an exception's name, a sentence — never the
remote body, a credential or the URL (a webhook URL is itself the secret).

The rule is applied at connect time by ``VettedBackend``, the httpcore network backend
of this module's client: it resolves the host, judges every address and opens the socket
to a judged address; TLS still checks the certificate against the host name (SNI). A
pooled connection was judged when it was opened. Redirects are never followed (a 3xx is
a failure), proxies and ``.netrc`` from the environment are ignored (a proxy would make
the judged address the proxy's), and ``BATON_OUTBOUND_CA_BUNDLE`` adds CAs to the
default trust store.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import ssl
import weakref
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import anyio
import certifi
import httpcore
import httpx

from actors.deliveries import SendError
from actors.outbound import DestinationRefused, IPAddress, destination_of_host, parse_url, vetted_addresses
from settings import get_settings

USER_AGENT = "Baton/1.0 (+escalation hand-offs)"
MAX_CONNECTIONS = 50
MAX_KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_EXPIRY_S = 5.0
CAUSES_LOOKED_AT_MAX = 8
# OpenSSL's verify codes (x509_vfy.h) of a certificate that names another host.
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64

# What h11 accepts as a header value: visible characters (and obs-text) with single
# spaces or tabs between them, nothing before or after; httpx encodes str values as ASCII.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
UNCARRIABLE_HEADER = "a credential holds a character an HTTP header cannot carry"


class VettedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the destination rule allows (checked at every connect).

    ``plain_http``: the backend of the ``http://`` pool, which may reach only the
    networks of BATON_OUTBOUND_ALLOW_CIDRS.
    """

    def __init__(self, *, plain_http: bool) -> None:
        self._scheme = "http" if plain_http else "https"
        self._sockets = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        destination = destination_of_host(self._scheme, host, port)
        try:
            with anyio.fail_after(timeout):
                addresses = await vetted_addresses(destination)
        except TimeoutError:
            raise httpcore.ConnectTimeout("the host's name did not resolve in time") from None
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._sockets.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            if not _connected_to(stream, address):
                await stream.aclose()
                raise DestinationRefused(
                    "connected elsewhere than judged", "connected to an address not judged"
                )
            return stream
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("must be a network address", "a unix socket is no destination")

    async def sleep(self, seconds: float) -> None:
        await self._sockets.sleep(seconds)


def _connected_to(stream: httpcore.AsyncNetworkStream, address: IPAddress) -> bool:
    """The socket's peer is the judged address (belt and braces: it was opened to that
    IP literal, which nothing resolves again)."""
    peer = stream.get_extra_info("server_addr")
    return not peer or ipaddress.ip_address(str(peer[0]).split("%", 1)[0]) == address


def _ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    bundle = get_settings().outbound_ca_bundle
    if bundle:
        context.load_verify_locations(cafile=bundle)
    return context


def _transport(context: ssl.SSLContext, *, plain_http: bool) -> httpx.AsyncHTTPTransport:
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False, limits=limits)
    # httpx 0.28 takes no network backend (encode/httpx#3749 adds one): its pool is
    # rebuilt with the same options and ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=VettedBackend(plain_http=plain_http),
    )
    return transport


# Weak: a loop that is gone (a finished test, say) takes its client with it.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def http_client() -> httpx.AsyncClient:
    """Shared by every caller on this loop (a client's pool belongs to the loop that made it)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        context = _ssl_context()
        client = httpx.AsyncClient(
            timeout=get_settings().delivery_timeout_s,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
            transport=_transport(context, plain_http=False),
            mounts={"http://": _transport(context, plain_http=True)},
        )
        _clients[loop] = client
    return client


def status_line(response: httpx.Response) -> str:
    """ "HTTP 500 Internal Server Error": the code and its standard phrase, never the
    remote's own reason phrase or body (either may echo what it was sent)."""
    try:
        return f"HTTP {response.status_code} {HTTPStatus(response.status_code).phrase}"
    except ValueError:
        return f"HTTP {response.status_code}"


def is_permanent(status_code: int) -> bool:
    """A 4xx other than timeout / conflict / rate limit: the same request will fail again."""
    return 400 <= status_code < 500 and status_code not in (408, 409, 425, 429)


def _transport_problem(exc: BaseException) -> str:
    """The exception's name, and a cause worth telling (certificate, refusal), no text of it."""
    name = type(exc).__name__
    cause: BaseException | None = exc
    for _ in range(CAUSES_LOOKED_AT_MAX):
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            if cause.verify_code in (X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH):
                return f"{name}: the server's certificate is for another host"
            return f"{name}: the server's certificate is not trusted"
        if isinstance(cause, ssl.SSLError):
            return f"{name}: TLS handshake failed"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return f"{name}: connection refused"
        cause = cause.__cause__ or cause.__context__
    return name


def _uncarriable(headers: Mapping[str, str] | None) -> bool:
    return any(not _HEADER_VALUE.fullmatch(value) for value in (headers or {}).values())


async def call(
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """One request to an account's URL; the response (any status but 3xx), or a sanitized
    ``SendError`` prefixed with ``what`` ("Autotask zone lookup: …")."""

    def failed(problem: str, *, permanent: bool) -> SendError:
        return SendError(f"{what}: {problem}", permanent=permanent)

    try:
        parse_url(url)
    except DestinationRefused as refused:
        raise failed(f"destination refused: {refused.summary}", permanent=True) from None
    if _uncarriable(headers):
        # h11's own error would quote the value: the credential itself.
        raise failed(UNCARRIABLE_HEADER, permanent=True)
    client = http_client()
    try:
        request = client.build_request(method, url, headers=headers, params=params, json=json, data=data)
    except Exception as exc:
        raise failed(f"the request could not be built ({type(exc).__name__})", permanent=True) from None
    try:
        response = await client.send(request)
    except DestinationRefused as refused:
        if not refused.permanent:  # a name that does not resolve (now): worth another try
            raise failed(refused.summary, permanent=False) from None
        raise failed(f"destination refused: {refused.summary}", permanent=True) from None
    except httpx.LocalProtocolError as exc:
        raise failed(f"the request could not be sent ({type(exc).__name__})", permanent=True) from None
    except Exception as exc:
        raise failed(_transport_problem(exc), permanent=False) from None
    if 300 <= response.status_code < 400:
        raise failed(f"{status_line(response)} (redirects are not followed)", permanent=True)
    return response
