"""E-mail: the escalation fan-out to every eligible senior, and the reminder's e-mails.

SPEC "E-mail fan-out" and the seed's ``dispatch_escalation_notifications``: one message
per eligible senior of the account (owner, admin, engineer; active, not deleted) except
whoever escalated; one ``email`` delivery per address. The fan-out actor writes the rows
and splits them into batches (``EMAIL_BATCH_SIZE``) so every worker process shares the
sending; a batch sends over a few reused SMTP connections (``SMTP_CONNECTIONS_PER_BATCH``).

With ``SMTP_URL`` unset (development) each message is written to
``{BATON_DATA_DIR}/mail/`` instead (files 0600 in a 0700 folder), and a line is logged.

Every header is written by Baton, never folded by the stdlib, and the flattened message
is parsed back before it leaves: user text cannot add a header (actors/mail_headers.py).
"""

from __future__ import annotations

import asyncio
import email.generator
import email.policy
import email.utils
import io
import logging
import math
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import aiosmtplib
import dramatiq

from actors import deliveries
from actors.broker import broker
from actors.context import HandoffContext, load
from actors.deliveries import Claim, Outcome, SendError
from actors.mail_headers import MalformedMessage, check_header_lines, check_message, header_lines, header_text
from settings import Settings, get_settings
from tables import db
from tables.enums import SENIOR_ROLES

log = logging.getLogger("baton.actors.email")

CHANNEL = "email"
EMAIL_BATCH_SIZE = 50
SMTP_CONNECTIONS_PER_BATCH = 4
MAX_ATTEMPTS = 10
SUBJECT_MAX_CHARS = 200
SMTPS_PORT = 465
SMTP_PORT = 25
# RFC 5321 §4.5.3.2.6 ("DATA Termination: 10 minutes"): the server answers the message's
# final "." only once it has taken responsibility for the message, and a client that
# gives up on that reply early sends the message again, a second copy. So the replies to
# DATA get BATON_SMTP_DATA_TIMEOUT_S, not the command timeout (BATON_DELIVERY_TIMEOUT_S).
# aiosmtplib waits as long for DATA's 354 as for the 250 after the message.
# The other waits of one send at the command timeout, at most: connect (and TLS), the
# greeting, EHLO, AUTH (two exchanges), MAIL, RCPT, RSET after a refusal.
SMTP_COMMAND_WAITS_PER_SEND_MAX = 8
MAIL_FOLDER = "mail"
MAIL_FOLDER_MODE = 0o700
MAIL_FILE_MODE = 0o600
NO_REASON = "No reason provided."
INTRO = "A teammate has escalated a session and is asking for help."
REMINDER_INTRO = "This escalation is still waiting for someone to pick it up."

MailKind = Literal["escalation", "reminder"]


# ------------------------------------------------------------------ the messages


def escalation_subject(ctx: HandoffContext) -> str:
    return header_text(f"New escalation: {ctx.problem_summary or 'an active session'}")[:SUBJECT_MAX_CHARS]


def escalation_body(ctx: HandoffContext, settings: Settings) -> str:
    notes = (ctx.engineer_notes or "").strip()
    body = f"{INTRO}\n\nReason: {notes or NO_REASON}\nPriority: {ctx.priority}"
    if settings.frontend_url:
        body += f"\n\n{settings.frontend_url.rstrip('/')}/escalations"
    return body


def reminder_subject(ctx: HandoffContext) -> str:
    return header_text(f"Still open: {ctx.problem_summary or 'an active session'}")[:SUBJECT_MAX_CHARS]


def reminder_body(ctx: HandoffContext, settings: Settings) -> str:
    notes = (ctx.engineer_notes or "").strip()
    body = (
        f"{REMINDER_INTRO} Its priority is now {ctx.priority}.\n\n"
        f"Reason: {notes or NO_REASON}\nPriority: {ctx.priority}"
    )
    if settings.frontend_url:
        body += f"\n\n{settings.frontend_url.rstrip('/')}/escalations"
    return body


def address_of(recipient: str) -> str:
    """A delivery's recipient is the address, or ``email:<address>`` in the reminder channel."""
    return recipient.removeprefix("email:")


@dataclass(frozen=True)
class Outgoing:
    """One message as sent: the envelope and the bytes (RFC 5322, CRLF line ends)."""

    delivery_id: uuid.UUID
    mail_from: str
    to: str
    subject: str
    raw: bytes


# The headers of every message, in the order written: exactly these, or it is not sent.
HEADER_NAMES = (
    "From",
    "To",
    "Message-ID",
    "Date",
    "Subject",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
)


def _body_part(body: str) -> bytes:
    """The text/plain part (its MIME headers and the encoded body), from the stdlib: no
    user text reaches a header there, only the body, after the blank line."""
    part = EmailMessage(policy=email.policy.SMTP)
    part.set_content(body)
    buffer = io.BytesIO()
    email.generator.BytesGenerator(buffer, policy=email.policy.SMTP).flatten(part)
    return buffer.getvalue()


def build_message(
    *, delivery_id: uuid.UUID | str, to: str, subject: str, body: str, settings: Settings
) -> bytes:
    """The message as sent (RFC 5322, CRLF line ends); ``MalformedMessage`` when its
    headers would not be exactly ``HEADER_NAMES`` (see actors/mail_headers.py)."""
    domain = settings.mail_from.rpartition("@")[2] or "baton.localhost"
    # To and Message-ID before anything users wrote: Composer addresses each copy by
    # replacing the first occurrence of their stand-ins.
    headers = header_lines(
        [
            ("From", settings.mail_from),
            ("To", to),
            # Derived from the delivery: a repeat after a crash is recognisably the same message.
            ("Message-ID", f"<{delivery_id}@{domain}>"),
            ("Date", email.utils.formatdate(localtime=False)),
            ("Subject", header_text(subject)),
        ]
    )
    raw = headers + _body_part(body)
    check_message(raw, HEADER_NAMES)
    return raw


# ------------------------------------------------------------------ the senders


@dataclass(frozen=True)
class SmtpConfig:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool


def smtp_config(url: str) -> SmtpConfig:
    parts = urlsplit(url)
    use_tls = parts.scheme == "smtps"
    return SmtpConfig(
        hostname=parts.hostname or "localhost",
        port=parts.port or (SMTPS_PORT if use_tls else SMTP_PORT),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=use_tls,
    )


class SmtpUnreachable(SendError):
    """Could not connect: the rest of the batch waits for the next try."""


_local_hostname: str | None = None


def _hostname() -> str:
    # aiosmtplib's default is socket.getfqdn(), a DNS query per connection.
    global _local_hostname
    if _local_hostname is None:
        _local_hostname = socket.gethostname() or "baton"
    return _local_hostname


def send_deadline_s(settings: Settings) -> float:
    """The longest one e-mail send can take while its SMTP client still waits on the
    server: the deliveries ledger's deadline for the attempt, and (plus a margin) the
    lease on its row, so no other attempt re-sends a row whose 250 may still come."""
    return SMTP_COMMAND_WAITS_PER_SEND_MAX * settings.delivery_timeout_s + 2 * settings.smtp_data_timeout_s


def lease_s(settings: Settings) -> float:
    return deliveries.lease_s(send_deadline_s(settings))


class SmtpSender:
    """One SMTP connection, opened on first use and reopened after an error."""

    def __init__(self, config: SmtpConfig, timeout_s: float, data_timeout_s: float) -> None:
        self._config = config
        self._timeout_s = timeout_s
        self._data_timeout_s = data_timeout_s
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        smtp = aiosmtplib.SMTP(
            hostname=self._config.hostname,
            port=self._config.port,
            username=self._config.username,
            password=self._config.password,
            use_tls=self._config.use_tls,
            timeout=self._timeout_s,
            local_hostname=_hostname(),
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpUnreachable(f"SMTP server unreachable: {type(exc).__name__}: {exc}") from None
        self._smtp = smtp
        return smtp

    async def send(self, outgoing: Outgoing) -> None:
        """MAIL, RCPT and DATA one by one (not ``sendmail``, which waits for every reply,
        the final 250 too, only as long as for a command)."""
        smtp = await self._connected()
        try:
            await smtp.mail(outgoing.mail_from, timeout=self._timeout_s)
            await smtp.rcpt(outgoing.to, timeout=self._timeout_s)
        except aiosmtplib.SMTPRecipientRefused as exc:
            await self._rset(smtp)
            raise SendError(f"SMTP {exc.code}: recipient refused", permanent=exc.code >= 500) from None
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise SendError(f"SMTP {exc.code}: {exc.message[:200]}", permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._reset()
            raise SendError(f"SMTP connection lost: {type(exc).__name__}") from None
        try:
            await smtp.data(outgoing.raw, timeout=self._data_timeout_s)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise SendError(f"SMTP {exc.code}: {exc.message[:200]}", permanent=exc.code >= 500) from None
        except aiosmtplib.SMTPTimeoutError:
            await self._reset()
            # The server may hold the message by now: sent again, at-least-once.
            raise SendError(
                f"no reply to DATA within {self._data_timeout_s:g} s; the server may have taken "
                "the message, which is sent again"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._reset()
            raise SendError(f"SMTP connection lost during DATA: {type(exc).__name__}") from None

    async def _rset(self, smtp: aiosmtplib.SMTP) -> None:
        """A refused recipient leaves the envelope open; reset it for the next message."""
        try:
            await smtp.rset(timeout=self._timeout_s)
        except (aiosmtplib.SMTPException, OSError):
            await self._reset()

    async def _reset(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def close(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                self._smtp.close()
        self._smtp = None


class FolderSender:
    """Development: each message becomes a file under the data folder."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def send(self, outgoing: Outgoing) -> None:
        await asyncio.to_thread(self._write, outgoing)

    def _write(self, outgoing: Outgoing) -> None:
        # Caught mail is the seniors' mail: readable by Baton's user alone.
        self._folder.mkdir(mode=MAIL_FOLDER_MODE, parents=True, exist_ok=True)
        if self._folder.stat().st_mode & 0o777 != MAIL_FOLDER_MODE:
            os.chmod(self._folder, MAIL_FOLDER_MODE)  # made by an earlier version, or by hand
        path = self._folder / f"{outgoing.delivery_id}.eml"
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MAIL_FILE_MODE)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), MAIL_FILE_MODE)  # a .partial left by a crash keeps its mode
            file.write(outgoing.raw)
        os.replace(partial, path)
        log.info("e-mail to %s (%s) written to %s", outgoing.to, outgoing.subject, path)

    async def close(self) -> None:
        return None


Sender = SmtpSender | FolderSender


def make_sender(settings: Settings) -> Sender:
    if settings.smtp_url:
        return SmtpSender(
            smtp_config(settings.smtp_url), settings.delivery_timeout_s, settings.smtp_data_timeout_s
        )
    return FolderSender(Path(settings.data_dir) / MAIL_FOLDER)


# ------------------------------------------------------------------ sending a batch

COUNT_UNREACHABLE = """
UPDATE deliveries
SET attempts = attempts + 1, last_error = $2, updated_at = now(),
    status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END
WHERE id = ANY($1::uuid[]) AND status = 'pending'
RETURNING status
"""


async def send_rows(
    delivery_ids: list[uuid.UUID],
    compose: Callable[[Claim], Outgoing],
    *,
    settings: Settings | None = None,
) -> list[Outcome]:
    """Send the rows over ``SMTP_CONNECTIONS_PER_BATCH`` connections; one outcome per row.

    When the server cannot be reached, the rows not yet tried are counted as one failed
    attempt each, without connecting again for every one of them.
    """
    settings = settings or get_settings()
    todo = list(reversed(delivery_ids))
    outcomes: list[Outcome] = []
    unreachable: list[str] = []

    async def connection_worker() -> None:
        sender = make_sender(settings)
        try:
            while todo and not unreachable:
                delivery_id = todo.pop()

                async def send(claim: Claim) -> None:
                    try:
                        await sender.send(compose(claim))
                    except SmtpUnreachable as exc:
                        unreachable.append(str(exc))
                        raise

                outcomes.append(
                    await deliveries.deliver(
                        delivery_id, send, max_attempts=MAX_ATTEMPTS, deadline_s=send_deadline_s(settings)
                    )
                )
        finally:
            await sender.close()

    await asyncio.gather(*(connection_worker() for _ in range(min(SMTP_CONNECTIONS_PER_BATCH, len(todo)))))
    if todo:
        rows = await db.fetch(COUNT_UNREACHABLE, todo, unreachable[0][:500], MAX_ATTEMPTS)
        outcomes += [Outcome.FAILED if row["status"] == "failed" else Outcome.RETRY for row in rows]
        outcomes += [Outcome.RETRY] * (len(todo) - len(rows))  # held elsewhere: look again later
    return outcomes


# Stand-ins rendered into the template, then replaced per recipient: building and
# flattening an EmailMessage costs half a millisecond, a byte replace a microsecond.
_TO_MARK = "baton-recipient@to.invalid"
_ID_MARK = "00000000-baton-0000-message-000000000000"


# One plain ASCII address, nothing that could make the To header say more than it.
_PLAIN_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")


class Composer:
    """The messages of one kind for one hand-off: rendered once, addressed per row."""

    def __init__(self, *, subject: str, body: str, settings: Settings) -> None:
        self.subject = subject
        self.body = body
        self.settings = settings
        self._refusal: str | None = None
        try:
            self._template = build_message(
                delivery_id=_ID_MARK, to=_TO_MARK, subject=subject, body=body, settings=settings
            )
        except MalformedMessage as exc:
            log.error("e-mail not sent: its headers would not be the ones Baton writes (%s)", exc)
            self._refusal = f"message refused before sending: {exc}"[:200]
            self._template = b""

    def __call__(self, claim: Claim) -> Outgoing:
        if self._refusal is not None:
            raise SendError(self._refusal, permanent=True)
        to = address_of(claim.recipient)
        if not (to.isascii() and to.isprintable() and _PLAIN_ADDRESS.fullmatch(to)):
            # Internationalised addresses need SMTPUTF8 end to end, which Baton does not speak.
            raise SendError(f"address {to!r} is not plain ASCII; not sent", permanent=True)
        raw = self._template.replace(_TO_MARK.encode(), to.encode(), 1)
        raw = raw.replace(_ID_MARK.encode(), str(claim.id).encode(), 1)
        try:
            check_header_lines(raw, HEADER_NAMES)  # the bytes that leave, ~µs
        except MalformedMessage as exc:
            log.error("e-mail to %s not sent: its headers are not the ones Baton writes (%s)", to, exc)
            raise SendError(f"message refused before sending: {exc}"[:200], permanent=True) from None
        return Outgoing(
            delivery_id=claim.id, mail_from=self.settings.mail_from, to=to, subject=self.subject, raw=raw
        )


def composer(ctx: HandoffContext, kind: MailKind, settings: Settings) -> Composer:
    if kind == "reminder":
        return Composer(subject=reminder_subject(ctx), body=reminder_body(ctx, settings), settings=settings)
    return Composer(subject=escalation_subject(ctx), body=escalation_body(ctx, settings), settings=settings)


# ------------------------------------------------------------------ the fan-out

RECIPIENTS = """
SELECT DISTINCT lower(email) AS email FROM users
WHERE account_id = $1 AND id <> $2 AND is_active AND deleted_at IS NULL
  AND account_role = ANY($3::text[]) AND email <> ''
"""

UNSENT = """
SELECT id FROM deliveries
WHERE handoff_id = $1 AND channel = $2 AND status IN ('pending', 'sending')
ORDER BY recipient
"""


def batches(ids: list[str], size: int = EMAIL_BATCH_SIZE) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


async def fan_out(handoff_id: uuid.UUID) -> int:
    """Write one row per recipient and hand the unsent ones to batches; returns how many."""
    ctx = await load(handoff_id)
    if ctx is None or ctx.intent != "escalate":
        return 0
    rows = await db.fetch(RECIPIENTS, ctx.account_id, ctx.handed_off_by, list(SENIOR_ROLES))
    if not rows:
        log.info("hand-off %s: no e-mail recipients", handoff_id)
        return 0
    await deliveries.ensure(ctx.account_id, handoff_id, CHANNEL, [row["email"] for row in rows])
    unsent = [str(row["id"]) for row in await db.fetch(UNSENT, handoff_id, CHANNEL)]

    def enqueue() -> None:
        for batch in batches(unsent):
            send_email_batch.send(str(handoff_id), batch, "escalation")

    await asyncio.to_thread(enqueue)
    log.info("hand-off %s: %d e-mail(s) in %d batch(es)", handoff_id, len(unsent), len(batches(unsent)))
    return len(unsent)


async def send_batch(handoff_id: uuid.UUID, delivery_ids: list[uuid.UUID], kind: MailKind) -> list[Outcome]:
    ctx = await load(handoff_id)
    if ctx is None:
        return []
    settings = get_settings()
    return await send_rows(delivery_ids, composer(ctx, kind, settings), settings=settings)


# Each connection sends its share of the batch, each send (claim, SMTP, mark) within its
# lease at worst; plus room for Postgres. A backstop: the sends themselves are bounded
# by their deadline, and a send under way is recorded even when the limit cancels.
TIME_LIMIT_MARGIN_S = 60
FAN_OUT_TIME_LIMIT_MS = 60_000
EMAIL_TIME_LIMIT_MS = int(
    (math.ceil(EMAIL_BATCH_SIZE / SMTP_CONNECTIONS_PER_BATCH) * lease_s(get_settings()) + TIME_LIMIT_MARGIN_S)
    * 1000
)


@dramatiq.actor(
    broker=broker,
    queue_name="notify",
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=FAN_OUT_TIME_LIMIT_MS,
)
async def send_escalation_emails(handoff_id: str, session_id: str | None = None) -> None:
    """Outbox job of an escalation: the rows, then the batches that send them."""
    await fan_out(uuid.UUID(handoff_id))


@dramatiq.actor(
    broker=broker,
    queue_name="notify",
    max_retries=MAX_ATTEMPTS + 2,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=EMAIL_TIME_LIMIT_MS,
)
async def send_email_batch(handoff_id: str, delivery_ids: list[str], kind: MailKind = "escalation") -> None:
    ids = [uuid.UUID(i) for i in delivery_ids]
    outcomes = await send_batch(uuid.UUID(handoff_id), ids, kind)
    sent = sum(outcome is Outcome.SENT for outcome in outcomes)
    log.info("hand-off %s: %d of %d %s e-mail(s) sent now", handoff_id, sent, len(outcomes), kind)
    await raise_if_pending(f"{kind} e-mails of hand-off {handoff_id}", ids, outcomes)


async def raise_if_pending(what: str, delivery_ids: list[uuid.UUID], outcomes: list[Outcome]) -> None:
    """Retry when a send needs it; rows held by another attempt are looked at again when
    that attempt's lease runs out (a crashed worker's rows), not on the backoff."""
    retry_s = None
    if Outcome.IN_FLIGHT in outcomes:
        retry_s = await deliveries.in_flight_retry_s(delivery_ids, lease_s(get_settings()))
    deliveries.raise_if_pending(what, outcomes, in_flight_retry_s=retry_s)
