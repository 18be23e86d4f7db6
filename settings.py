"""Baton's configuration: one frozen Struct read from the environment, nothing else.

Every field maps to one environment variable (``ENV_NAMES``). A bad value fails at
start with a message naming the variable, so an operator knows what to fix.
The README's configuration table is generated from ``describe()``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import msgspec


class SettingsError(ValueError):
    """A variable of the environment has a value Baton cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Where Postgres and Redis live. Unset: embedded servers under data_dir.
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: str = ".baton"

    # HS256 secret for user and service tokens. Unset in development: a random one
    # is kept in data_dir so CLI tokens work with the server.
    jwt_secret: str | None = None
    # A user token may live at most this long (its exp no further ahead than this).
    max_token_lifetime_s: int = 24 * 3600
    # Origins allowed to open the inbox websocket and to call the API from a browser (CORS).
    allowed_origins: tuple[str, ...] = ()
    # GET /metrics answers only to "Authorization: Bearer <this>"; unset: /metrics is 404.
    metrics_token: str | None = None

    # Outbound calls to account-configured URLs (webhooks, PSAs) go to global addresses
    # only, unless the address lies in one of these networks (an on-premises PSA, the
    # tests' local fakes); plain http:// is allowed only to those. actors/outbound.py.
    outbound_allow_cidrs: tuple[str, ...] = ()
    # Single ip:port endpoints allowed the same way (baton dev: its own demo PSA).
    outbound_allow_endpoints: tuple[str, ...] = ()
    # A PEM bundle of extra CAs trusted for outbound HTTPS (an MSP's private CA).
    outbound_ca_bundle: str | None = None

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    ai_model: str = "claude-sonnet-4-6"  # claude-sonnet-4-5 retires on 2026-11-30
    ai_timeout_s: float = 30.0
    ai_max_retries: int = 2

    smtp_url: str | None = None
    mail_from: str = "baton@localhost"
    frontend_url: str | None = None
    # Baton's own public address, for links to its inbox page in chat messages.
    public_url: str | None = None

    # One send to the outside world (SMTP command, webhook, PSA call) gives up after this
    # long; a webhook or PSA delivery left "sending" twice this long is taken to be a
    # crashed attempt (an e-mail's lease: actors/mail_transport.py, send_deadline_s).
    delivery_timeout_s: float = 10.0
    # How long an SMTP client waits for the server's reply to a message's DATA (RFC 5321
    # §4.5.3.2.6): giving up while the server stores the message makes a second copy.
    smtp_data_timeout_s: float = 120.0
    delivery_sweep_after_s: float = 900.0

    remind_after_s: int = 900
    inbox_history_max_events: int = 1000

    # Dramatiq: a SIGKILLed worker's message comes back after heartbeat_timeout and
    # the next maintenance roll; the library defaults (60 s, 1 in 1000) can take
    # over ten minutes on a quiet queue.
    worker_heartbeat_timeout_ms: int = 30_000
    worker_maintenance_chance_per_million: int = 50_000
    worker_idle_poll_ms: int = 100
    outbox_sweep_interval_s: float = 1.0

    # Per caller (a user, or an account's host app), shared by every replica through Redis.
    rate_limit_writes_per_minute: int = 600
    rate_limit_inbox_connects_per_minute: int = 120
    # Dramatiq's Prometheus exposition port of a worker pool; 0: not exported.
    worker_metrics_port: int = 0

    log_level: str = "INFO"
    log_format: str = "text"


# field name -> environment variable
ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "data_dir": "BATON_DATA_DIR",
    "jwt_secret": "BATON_JWT_SECRET",
    "max_token_lifetime_s": "BATON_MAX_TOKEN_LIFETIME_S",
    "allowed_origins": "BATON_ALLOWED_ORIGINS",
    "metrics_token": "BATON_METRICS_TOKEN",
    "outbound_allow_cidrs": "BATON_OUTBOUND_ALLOW_CIDRS",
    "outbound_allow_endpoints": "BATON_OUTBOUND_ALLOW_ENDPOINTS",
    "outbound_ca_bundle": "BATON_OUTBOUND_CA_BUNDLE",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "ai_model": "BATON_AI_MODEL",
    "ai_timeout_s": "BATON_AI_TIMEOUT_S",
    "ai_max_retries": "BATON_AI_MAX_RETRIES",
    "smtp_url": "SMTP_URL",
    "mail_from": "MAIL_FROM",
    "frontend_url": "FRONTEND_URL",
    "public_url": "BATON_PUBLIC_URL",
    "delivery_timeout_s": "BATON_DELIVERY_TIMEOUT_S",
    "smtp_data_timeout_s": "BATON_SMTP_DATA_TIMEOUT_S",
    "delivery_sweep_after_s": "BATON_DELIVERY_SWEEP_AFTER_S",
    "remind_after_s": "BATON_REMIND_AFTER_S",
    "inbox_history_max_events": "BATON_INBOX_HISTORY_MAX_EVENTS",
    "worker_heartbeat_timeout_ms": "BATON_WORKER_HEARTBEAT_TIMEOUT_MS",
    "worker_maintenance_chance_per_million": "BATON_WORKER_MAINTENANCE_CHANCE_PER_MILLION",
    "worker_idle_poll_ms": "BATON_WORKER_IDLE_POLL_MS",
    "outbox_sweep_interval_s": "BATON_OUTBOX_SWEEP_INTERVAL_S",
    "rate_limit_writes_per_minute": "BATON_RATE_LIMIT_WRITES_PER_MINUTE",
    "rate_limit_inbox_connects_per_minute": "BATON_RATE_LIMIT_INBOX_CONNECTS_PER_MINUTE",
    "worker_metrics_port": "BATON_WORKER_METRICS_PORT",
    "log_level": "BATON_LOG_LEVEL",
    "log_format": "BATON_LOG_FORMAT",
}

DESCRIPTIONS: dict[str, str] = {
    "database_url": "Postgres URL. Unset: an embedded Postgres 16 under the data folder.",
    "redis_url": "Redis URL. Unset: an embedded Redis under the data folder.",
    "data_dir": "Folder for embedded services, the dev JWT secret and caught e-mail.",
    "jwt_secret": "HS256 secret for tokens, at least 32 bytes (placeholders are refused). Unset: a "
    "random one kept in the data folder.",
    "max_token_lifetime_s": "Longest lifetime a user token may have (its `exp` at most this far "
    "ahead), seconds.",
    "allowed_origins": "Comma-separated browser `Origin`s allowed besides the server's own: for the "
    "inbox websocket and for CORS on the API.",
    "metrics_token": "Bearer token `GET /metrics` requires. Unset: `/metrics` answers 404.",
    "outbound_allow_cidrs": "Comma-separated networks (CIDR) outbound calls may reach besides "
    "global addresses, e.g. an on-premises PSA; plain `http://` only to these.",
    "outbound_allow_endpoints": "Comma-separated `ip:port` endpoints outbound calls may reach besides global "
    "addresses (narrower than a network; `baton dev` allows its demo PSA so, and nothing else).",
    "outbound_ca_bundle": "PEM file of extra CA certificates trusted for outbound HTTPS (webhooks, PSAs).",
    "anthropic_api_key": "Anthropic key. Unset: the offline assessor (rules, confidence low).",
    "anthropic_base_url": "Anthropic API base URL (without /v1); for a proxy or a local fake.",
    "ai_model": "Model for assessments and briefings.",
    "ai_timeout_s": "Timeout of one AI call, seconds.",
    "ai_max_retries": "Retries of one AI call on 429/5xx/timeouts.",
    "smtp_url": "smtp://user:pass@host:port (smtps:// for TLS). Unset: e-mail is written "
    "under the data folder.",
    "mail_from": "Sender of Baton's e-mail.",
    "frontend_url": "Base URL of the host app; e-mails link to `{FRONTEND_URL}/escalations`.",
    "public_url": "Baton's public base URL; Slack and Teams messages link to `{BATON_PUBLIC_URL}/inbox`, "
    "and each escalation e-mail carries its recipient's pick-up link `{BATON_PUBLIC_URL}/pickup/…`. "
    "Unset: no pick-up links (`baton dev` sets it to the URL it prints).",
    "delivery_timeout_s": "Timeout of one send (SMTP command, webhook, PSA call), seconds; a "
    "webhook or PSA delivery stuck sending twice this long is retried.",
    "delivery_sweep_after_s": "Deliveries left pending (or mid-send) this long, their message "
    "presumably lost, get their job sent again (at most once per row still); seconds.",
    "smtp_data_timeout_s": "How long to wait for the SMTP server's reply to a message (DATA), "
    "seconds; giving up early sends a second copy. An e-mail stuck sending longer than 8 × "
    "`BATON_DELIVERY_TIMEOUT_S` + 2 × this + 15 s is taken for a crashed attempt and sent again.",
    "remind_after_s": "An escalation still open this long re-notifies once, seconds.",
    "inbox_history_max_events": "Events kept per account for websocket replay (`since`).",
    "worker_heartbeat_timeout_ms": "Dramatiq: a worker silent this long has its messages requeued.",
    "worker_maintenance_chance_per_million": "Dramatiq: broker commands per million that "
    "also requeue the messages of dead workers.",
    "worker_idle_poll_ms": "Dramatiq: how long an idle worker blocks before polling again.",
    "outbox_sweep_interval_s": "How often each worker's outbox relay looks for unsent jobs when no "
    "commit has woken it (it LISTENs for them), seconds.",
    "rate_limit_writes_per_minute": "Writes (POST/PUT/PATCH/DELETE) a minute per user or host app, "
    "with bursts as large; over it: 429 with `Retry-After`.",
    "rate_limit_inbox_connects_per_minute": "Inbox websocket connects a minute per user; over it the "
    "socket is closed with 4429.",
    "worker_metrics_port": "Port of a worker pool's Prometheus metrics (`baton worker`); 0: none.",
    "log_level": "DEBUG, INFO, WARNING or ERROR.",
    "log_format": "`text` (people) or `json` (one object a line, with request, account and hand-off ids).",
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "log_format": ("text", "json"),
}
_POSITIVE = {
    "ai_timeout_s",
    "max_token_lifetime_s",
    "remind_after_s",
    "inbox_history_max_events",
    "worker_heartbeat_timeout_ms",
    "worker_maintenance_chance_per_million",
    "worker_idle_poll_ms",
    "outbox_sweep_interval_s",
    "delivery_timeout_s",
    "smtp_data_timeout_s",
    "delivery_sweep_after_s",
    "rate_limit_writes_per_minute",
    "rate_limit_inbox_connects_per_minute",
}
_PORTS = {"worker_metrics_port"}
_LISTS = {"allowed_origins", "outbound_allow_cidrs", "outbound_allow_endpoints"}

JWT_SECRET_MIN_BYTES = 32
# Example and placeholder values that must never sign real tokens.
_PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "your-secret", "placeholder")
_SECRET_MIN_DISTINCT_CHARS = 8


def check_jwt_secret(secret: str) -> None:
    """Refuse a secret anyone could guess: short, an example file's, or one repeated letter."""
    env = ENV_NAMES["jwt_secret"]
    if len(secret.encode()) < JWT_SECRET_MIN_BYTES:
        raise SettingsError(
            f"{env} is {len(secret.encode())} bytes; use at least {JWT_SECRET_MIN_BYTES} random bytes, "
            "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    lowered = secret.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS) or len(set(secret)) < _SECRET_MIN_DISTINCT_CHARS:
        raise SettingsError(
            f"{env} is a placeholder, not a secret; set it to random bytes, "
            "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )


PUBLIC_URL_MAX_CHARS = 200


def check_public_url(url: str) -> None:
    """An http(s) base URL, printable ASCII without spaces, no query or fragment: pick-up
    links and chat links are built on it (and a link goes into an e-mail as it is)."""
    env = ENV_NAMES["public_url"]
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    plain = url.isascii() and url.isprintable() and " " not in url and len(url) <= PUBLIC_URL_MAX_CHARS
    if (
        parts is None
        or not plain
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise SettingsError(
            f"{env}={url!r} must be Baton's http(s) address as users reach it, e.g. "
            f"https://baton.example.com (ASCII, at most {PUBLIC_URL_MAX_CHARS} characters, "
            "no query or fragment)"
        )


def _endpoint(env: str, text: str) -> str:
    """``ip:port`` (``[v6]:port``), normalized: ``127.0.0.1:56380``, ``[::1]:56380``."""
    host, _, port = text.rpartition(":")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        raise SettingsError(f"{env}: {text!r} is not an ip:port endpoint (e.g. 127.0.0.1:56380)") from None
    return f"[{address}]:{number}" if address.version == 6 else f"{address}:{number}"


def _network(env: str, text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise SettingsError(f"{env}: {text!r} is not a network (e.g. 10.20.0.0/16 or 192.168.1.5)") from None


def _parse(field: str, raw: str, annotation: Any) -> Any:
    env = ENV_NAMES[field]
    text = raw.strip()
    if field in _LISTS:
        parts = tuple(part.strip() for part in text.split(",") if part.strip())
        if field == "outbound_allow_cidrs":
            parts = tuple(_network(env, part) for part in parts)
        if field == "outbound_allow_endpoints":
            parts = tuple(_endpoint(env, part) for part in parts)
        return parts
    if text == "" and "None" in str(annotation):
        return None
    try:
        if annotation in (int, "int"):
            value: Any = int(text)
        elif annotation in (float, "float"):
            value = float(text)
        else:
            value = text
    except ValueError:
        kind = "a whole number" if annotation in (int, "int") else "a number"
        raise SettingsError(f"{env}={raw!r} is not {kind}") from None
    if field in _POSITIVE and value <= 0:
        raise SettingsError(f"{env}={raw!r} must be greater than 0")
    if field in _PORTS and not 0 <= value <= 65535:
        raise SettingsError(f"{env}={raw!r} must be a port number (0 for none)")
    if field in _CHOICES:
        value = value.upper() if field == "log_level" else value.lower()
        if value not in _CHOICES[field]:
            choices = ", ".join(_CHOICES[field])
            raise SettingsError(f"{env}={raw!r} must be one of {choices}")
    if field in ("database_url",) and not value.startswith(("postgres://", "postgresql://")):
        raise SettingsError(f"{env}={raw!r} must start with postgresql://")
    if field in ("redis_url",) and not value.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"{env}={raw!r} must start with redis:// or rediss://")
    if field == "smtp_url" and not value.startswith(("smtp://", "smtps://")):
        raise SettingsError(f"{env}={raw!r} must start with smtp:// or smtps://")
    if field == "jwt_secret" and value is not None:
        check_jwt_secret(value)
    if field == "public_url" and value is not None:
        check_public_url(value)
    if field == "outbound_ca_bundle" and value is not None and not os.path.isfile(value):
        raise SettingsError(f"{env}={raw!r}: no such file (a PEM bundle of CA certificates)")
    return value


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    annotations = Settings.__annotations__
    values: dict[str, Any] = {}
    for field, env in ENV_NAMES.items():
        if env in environ:
            values[field] = _parse(field, environ[env], annotations[field])
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Call ``get_settings.cache_clear()`` after
    changing the environment (the CLI does, once embedded services are up)."""
    return load()


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for the README."""
    defaults = Settings()
    rows = []
    for field, env in ENV_NAMES.items():
        default = getattr(defaults, field)
        shown = "unset" if default in (None, ()) else str(default)
        rows.append((env, shown, DESCRIPTIONS[field]))
    return rows
