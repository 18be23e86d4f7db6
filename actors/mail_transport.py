"""How an e-mail leaves: over SMTP, or (development, ``SMTP_URL`` unset) into a folder.

``SmtpSender`` keeps one connection, opened on first use and reopened after an error, and
sends MAIL, RCPT and DATA one by one with their own timeouts. ``FolderSender`` writes
each message to ``{BATON_DATA_DIR}/mail/`` (files 0600 in a 0700 folder) and logs a line.
``send_deadline_s`` bounds one send, and so the lease of its delivery row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from actors import deliveries
from actors.deliveries import SendError
from actors.mail_message import Outgoing
from settings import Settings

log = logging.getLogger("baton.actors.email")

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
