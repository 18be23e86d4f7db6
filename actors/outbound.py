"""Where Baton may call for an account: SPEC "Outbound destinations".

Every URL an account configures (Slack/Teams webhooks, a PSA's ``base_url``) and every
URL a PSA answers with (Autotask's zone) is judged here, twice: when the host app PUTs it
(``check_url``: a 422 naming the rule) and when a connection is opened
(``vetted_addresses``, used by ``actors.http``'s network backend: the host is resolved,
every address judged, and the socket opened to a judged address, so a name that
resolves elsewhere by then — DNS rebinding — is caught at the address actually used).

The rule: ``https://`` only, no user name or password, a host, and only global
addresses — not loopback, private, shared (CGNAT), link-local (cloud metadata), unspecified,
multicast or reserved — judged after unwrapping IPv4-mapped, IPv4-compatible, 6to4 and
NAT64 forms, unless the address lies in ``BATON_OUTBOUND_ALLOW_CIDRS`` (an on-premises
PSA; the only place plain ``http://`` may go). An IP literal counts as what a resolver
makes of it: ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` and ``0`` are
loopback or unspecified, as ``inet_aton`` reads them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from settings import ENV_NAMES, get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_ENV = ENV_NAMES["outbound_allow_cidrs"]
DEFAULT_PORTS = {"https": 443, "http": 80}

# Metadata services answer on link-local (or, for some clouds, other non-global)
# addresses; named apart so the refusal says what was at stake.
CLOUD_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
LOW_32_BITS = 0xFFFFFFFF

# RFC 6761: names that never resolve, and names that always mean this machine; both
# are answered here, without asking DNS.
NEVER_RESOLVES = ("invalid",)
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))

# What inet_aton reads as an IPv4 address: decimal, octal (0…) and hex (0x…) parts, one
# to four of them. Anything else with letters is a name.
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
HOST_NAME_MAX = 253
# Nothing of C0, DEL or C1, and no space, anywhere in a URL Baton stores or calls.
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f]")

RULE_HINT = f"Baton only calls global addresses ({ALLOW_ENV} adds on-premises networks)"


class DestinationRefused(Exception):
    """A URL or address the rule refuses.

    ``detail`` completes "<field> …" in a PUT's 422 (it may name the address, for the
    host app that sent it); ``summary`` is what a stored error says (no address, no URL).
    ``permanent``: False only for a name that does not resolve, which may be a DNS hiccup.
    """

    def __init__(self, detail: str, summary: str | None = None, *, permanent: bool = True) -> None:
        super().__init__(summary or detail)
        self.detail = detail
        self.summary = summary or detail
        self.permanent = permanent


@dataclass(frozen=True)
class Destination:
    """A URL's scheme, host and port; ``address`` when the host is an IP literal."""

    scheme: str
    host: str
    port: int
    address: IPAddress | None = None

    @property
    def plain_http(self) -> bool:
        return self.scheme == "http"


def ip_literal(host: str) -> IPAddress | None:
    """The address an IP-literal host means (every form ``inet_aton`` accepts), else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    # A trailing dot is the root of DNS, not part of the address (as browsers read it).
    numeric = host[:-1] if host.endswith(".") else host
    if _NUMERIC_HOST.fullmatch(numeric) and any(c.isdigit() for c in numeric):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(numeric))
        except OSError:
            return None
    return None


def destination_of_host(scheme: str, host: str, port: int) -> Destination:
    """A host as an HTTP client hands it over (IDNA-encoded, IPv6 without brackets)."""
    address = ip_literal(host)
    if address is not None:
        return Destination(scheme, str(address), port, address)
    name = host.lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise DestinationRefused(
            "has a host that is not a valid name", "the host is not a valid name"
        ) from None
    labels = name.rstrip(".").split(".")
    if len(name) > HOST_NAME_MAX or not all(_LABEL.fullmatch(label) for label in labels):
        raise DestinationRefused("has a host that is not a valid name", "the host is not a valid name")
    return Destination(scheme, name, port)


def parse_url(url: str) -> Destination:
    """The URL's destination, or DestinationRefused naming the rule it breaks (no DNS)."""
    if _UNSAFE_IN_URL.search(url):
        raise DestinationRefused(
            "must not hold spaces or control characters", "the URL holds a space or control character"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise DestinationRefused("is not a valid URL", "the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise DestinationRefused("must use https://", "the URL is not https://")
    if "@" in parts.netloc:
        raise DestinationRefused(
            "must not carry a user name or password", "the URL carries a user name or password"
        )
    if not host:
        raise DestinationRefused("must name a host", "the URL names no host")
    if port == 0:
        raise DestinationRefused("must not use port 0", "the URL uses port 0")
    return destination_of_host(scheme, host, port or DEFAULT_PORTS[scheme])


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def allowed_networks() -> tuple[IPNetwork, ...]:
    return _networks(get_settings().outbound_allow_cidrs)


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & LOW_32_BITS)
    return address


def _in_any(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    # ipaddress compares raw integers: an IPv4 address "is in" some IPv6 networks.
    return any(address.version == network.version and address in network for network in networks)


def is_allowed(address: IPAddress) -> bool:
    """In BATON_OUTBOUND_ALLOW_CIDRS, as written or as the IPv4 address it carries."""
    networks = allowed_networks()
    return _in_any(address, networks) or _in_any(unwrap(address), networks)


def kind_of_refused(address: IPAddress) -> str | None:
    """What kind of non-global address this is ("a loopback address"), or None: global."""
    found = unwrap(address)
    if found in CLOUD_METADATA or address in CLOUD_METADATA:
        return "the cloud metadata address"
    if found.is_loopback:
        return "a loopback address"
    if found.is_unspecified:
        return "an unspecified address"
    if found.is_link_local:
        return "a link-local address"
    if found.is_multicast:
        return "a multicast address"
    if _in_any(found, PRIVATE_NETWORKS):
        return "a private address"
    if found in SHARED_NETWORK:
        return "a shared (carrier-grade NAT) address"
    if not found.is_global or found.is_reserved:
        return "a reserved address"
    return None


def _plain_http_refused() -> DestinationRefused:
    return DestinationRefused(
        f"must use https:// (plain http:// only to an address in {ALLOW_ENV})",
        f"plain http:// to an address outside {ALLOW_ENV}",
    )


def endpoint_allowed(address: IPAddress, port: int) -> bool:
    """``address:port`` is one of BATON_OUTBOUND_ALLOW_ENDPOINTS (``baton dev``'s demo PSA)."""
    written = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    return written in get_settings().outbound_allow_endpoints


def judge(destination: Destination, address: IPAddress) -> None:
    """Refuse ``address`` for ``destination`` unless the rule lets Baton call it."""
    if is_allowed(address) or endpoint_allowed(address, destination.port):
        return
    kind = kind_of_refused(address)
    if kind is not None:
        raise DestinationRefused(f"resolves to {address}, {kind}: {RULE_HINT}", f"resolves to {kind}")
    if destination.plain_http:
        raise _plain_http_refused()


def _unresolved(destination: Destination) -> DestinationRefused:
    return DestinationRefused(
        f"has a host, {destination.host}, that does not resolve", "the host does not resolve", permanent=False
    )


def _special_name(destination: Destination) -> list[IPAddress] | None:
    top = destination.host.rstrip(".").rsplit(".", 1)[-1]
    if top in NEVER_RESOLVES:
        raise _unresolved(destination)
    if top in LOOPBACK_NAMES:
        return list(LOOPBACK_ADDRESSES)
    return None


async def resolve(destination: Destination) -> list[IPAddress]:
    """The addresses the destination's host stands for, as the system resolver says
    (off the event loop); DestinationRefused (not permanent) when it says none."""
    if destination.address is not None:
        return [destination.address]
    special = _special_name(destination)
    if special is not None:
        return special
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _unresolved(destination) from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise _unresolved(destination)
    return found


async def vetted_addresses(destination: Destination) -> list[IPAddress]:
    """Every address of the destination, each one judged: a name with any refused
    address is refused whole (one public and one private answer is a rebinding trick)."""
    if destination.plain_http and destination.address is None and not allowed_networks():
        # No network is allowed, so no address can make plain http:// right: no lookup.
        raise _plain_http_refused()
    addresses = await resolve(destination)
    for address in addresses:
        judge(destination, address)
    return addresses


async def check_url(url: str) -> Destination:
    """For a PUT: the URL's destination, or DestinationRefused (see ``detail``)."""
    destination = parse_url(url)
    await vetted_addresses(destination)
    return destination
