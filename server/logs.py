"""Log setup shared by every Baton process: text for people, JSON for machines.

JSON lines carry the request id, account id, hand-off id and Dramatiq message id of
whatever wrote them (``log_context``).

No line carries a raw control character, whoever wrote it (uvicorn's access log, a
library, us): user text reaches log lines (a decoded path, an error message), and a raw
newline in it would forge a line, a NUL or an escape sequence corrupt a file or a
terminal. Text lines show them escaped (``\\x0a``); JSON escapes them as JSON does, plus
DEL, C1 and U+2028/U+2029, which ``json.dumps`` leaves raw. A text traceback keeps its
own line breaks, each of its lines indented by ``TRACEBACK_MARGIN``: only a record starts
at column 0, so a newline inside an exception's message cannot start a forged record.

Nothing secret may reach a log: our own code never logs a token, a webhook URL or a PSA
credential, and ``Redactor`` is the second wall for what libraries write (uvicorn's
websocket frame dump at DEBUG holds the first-message auth token; httpx's request line
holds a webhook URL, which is its secret).
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
TRACEBACK_MARGIN = "  | "
REDACTED = "[redacted]"

# C0 (newline and tab included), DEL, C1, and the Unicode line and paragraph separators.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What json.dumps(ensure_ascii=False) leaves raw of those.
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029]")

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
    # A pick-up link's token (a capability to claim as its recipient), wherever its path
    # shows: the access log's request line, an error naming the path.
    (re.compile(r"/pickup/[^\s\"'?#]+"), "/pickup/" + REDACTED),
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


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x0a``)."""
    if _CONTROL_CHARACTER.search(text) is None:
        return text
    return _CONTROL_CHARACTER.sub(_escaped, text)


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _indented(block: str) -> str:
    return "".join(f"\n{TRACEBACK_MARGIN}{escape_controls(line)}" for line in block.split("\n"))


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines with control characters escaped; a traceback (or stack) below
    its record, every line of it indented by ``TRACEBACK_MARGIN``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = escape_controls(self.formatMessage(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += _indented(record.exc_text)
        if record.stack_info:
            line += _indented(self.formatStack(record.stack_info))
        return line


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
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False)
        if _RAW_IN_JSON.search(line) is None:
            return line
        return _RAW_IN_JSON.sub(_json_escaped, line)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    # On the handler, not a logger: records propagated from any library pass through it.
    handler.addFilter(Redactor(known_secrets(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    quiet_level = max(logging.getLevelName(settings.log_level), logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet_level)
