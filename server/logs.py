"""Log setup shared by every Baton process: text for people, JSON for machines.

JSON lines carry the request id, account id, hand-off id and Dramatiq message id of
whatever wrote them (``log_context``). Nothing secret may reach a log: our own code never
logs a token, a webhook URL or a PSA credential, and ``Redactor`` is the second wall for
what libraries write (uvicorn's websocket frame dump at DEBUG holds the first-message
auth token; httpx's request line holds a webhook URL, which is its secret).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import log_context
from settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
REDACTED = "[redacted]"

# Libraries whose DEBUG (or INFO) lines hold secrets or only repeat what we log anyway:
# httpx/httpcore name every URL (a Slack or Teams webhook URL is the credential), hpack
# dumps headers (Authorization), websockets dumps frames (the inbox auth message).
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "websockets", "aiosmtplib", "anthropic", "urllib3")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> / Basic <credentials>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # A secret-named JSON member, up to its closing quote: also when the writer cut the
    # value short (uvicorn's frame dump keeps a token's head and tail around "...").
    (
        re.compile(
            r'(?i)("(?:token|access_token|refresh_token|client_secret|secret|password|url)"\s*:\s*")[^"]*'
        ),
        r"\1" + REDACTED,
    ),
    # A JWT, or what is left of one (base64 of '{"' is "eyJ"), anywhere.
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
    # user:password@ in a URL (DATABASE_URL, SMTP_URL, a PSA base URL with credentials).
    (re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE), r"\1" + REDACTED + "@"),
    # Slack incoming-webhook paths and Teams/Power Automate signatures.
    (re.compile(r"/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"), "/services/" + REDACTED),
    (
        re.compile(r"(?i)\b(sig|code|client_secret|secret|password|api_key|apikey|token)=[^&\s\"']+"),
        r"\1=" + REDACTED,
    ),
    # An Anthropic key.
    (re.compile(r"sk-ant-[A-Za-z0-9_-]+"), REDACTED),
)


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def known_secrets(settings: Settings) -> list[str]:
    """Secret values from the settings, longest first (so none is left half-replaced)."""
    values = [
        settings.jwt_secret,
        settings.anthropic_api_key,
        _url_password(settings.smtp_url),
        _url_password(settings.database_url),
        _url_password(settings.redis_url),
    ]
    # A very short value would redact ordinary words.
    return sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True)


class Redactor(logging.Filter):
    """Rewrites each record's message with secrets replaced, before any formatter sees it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the log context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(log_context.current())
        if record.exc_text or record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    # On the handler, not a logger: records propagated from any library pass through it.
    handler.addFilter(Redactor(known_secrets(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    quiet_level = max(logging.getLevelName(settings.log_level), logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet_level)
