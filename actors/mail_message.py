"""The message as it leaves: RFC 5322 bytes with exactly Baton's headers.

Every header is written by Baton, never folded by the stdlib, and the flattened message
is parsed back before it leaves: user text cannot add a header (``actors/mail_headers.py``).
A ``Composer`` renders one kind of message for one hand-off once and addresses a copy per
delivery row, each copy checked again as bytes.
"""

from __future__ import annotations

import email.generator
import email.policy
import email.utils
import io
import logging
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage

from actors.context import HandoffContext
from actors.deliveries import Claim, SendError
from actors.mail_content import MailKind, subject_and_body
from actors.mail_headers import MalformedMessage, check_header_lines, check_message, header_lines, header_text
from settings import Settings

log = logging.getLogger("baton.actors.email")

# The reminder's rows name their e-mail recipient "email:<address>" (its channel also
# holds bell rows); the escalation's rows the address alone.
EMAIL_RECIPIENT_PREFIX = "email:"


def address_of(recipient: str) -> str:
    """A delivery's recipient is the address, or ``email:<address>`` in the reminder channel."""
    return recipient.removeprefix(EMAIL_RECIPIENT_PREFIX)


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
    """The messages of ``kind`` about ``ctx``'s hand-off."""
    subject, body = subject_and_body(ctx, kind, settings)
    return Composer(subject=subject, body=body, settings=settings)
