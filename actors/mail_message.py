"""The message as it leaves: RFC 5322 bytes with exactly Baton's headers.

Every header is written by Baton, never folded by the stdlib, and the flattened message
is parsed back before it leaves: user text cannot add a header (``actors/mail_headers.py``).
A ``Composer`` renders one kind of message for one hand-off once and addresses a copy per
delivery row, each copy checked again as bytes.

With pick-up links on, each copy also ends with its recipient's own link
(``actors/pickup_links.py``). The template is rendered with a stand-in link of the same
length as every real one, its text sent as it is (7bit, or 8bit for non-ASCII; RFC 5322
allows 998-byte lines, so the long link line needs no quoted-printable), and each copy
swaps the real link paragraph in for the template's last bytes: cut at a position known
from the end, never found by searching, so no user text can steer where it goes, and
the headers it cannot reach are checked again as bytes. A body that cannot be sent as it
is (a line over 998 bytes) makes each copy whole instead, as slow as that is (~1-2 ms).
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
from actors.mail_content import MailKind, pickup_paragraph, subject_and_body
from actors.mail_headers import (
    HARD_LINE_MAX_CHARS,
    MalformedMessage,
    check_header_lines,
    check_message,
    header_lines,
    header_text,
)
from pickup_links import TOKEN_CHARS, RecipientLinks
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


def _body_part(body: str, cte: str | None = None) -> bytes:
    """The text/plain part (its MIME headers and the encoded body), from the stdlib: no
    user text reaches a header there, only the body, after the blank line. ``cte``
    None: the stdlib's choice of transfer encoding."""
    part = EmailMessage(policy=email.policy.SMTP)
    part.set_content(body, cte=cte)
    buffer = io.BytesIO()
    email.generator.BytesGenerator(buffer, policy=email.policy.SMTP).flatten(part)
    return buffer.getvalue()


def verbatim_cte(body: str) -> str | None:
    """``7bit`` (ASCII) or ``8bit`` when every line of ``body`` fits in 998 bytes, so the
    text goes out as it is; None when one does not (the stdlib then picks
    quoted-printable or base64)."""
    encoded = body.encode("utf-8")
    if any(len(line) > HARD_LINE_MAX_CHARS for line in encoded.splitlines()):
        return None
    return "7bit" if encoded.isascii() else "8bit"


def build_message(
    *,
    delivery_id: uuid.UUID | str,
    to: str,
    subject: str,
    body: str,
    settings: Settings,
    cte: str | None = None,
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
    raw = headers + _body_part(body, cte)
    check_message(raw, HEADER_NAMES)
    return raw


# Stand-ins rendered into the template, then replaced per recipient: building and
# flattening an EmailMessage costs half a millisecond or more, a byte replace a microsecond.
_TO_MARK = "baton-recipient@to.invalid"
_ID_MARK = "00000000-baton-0000-message-000000000000"
# A pick-up token's stand-in: as long as every real one, of its alphabet.
_TOKEN_MARK = "x" * TOKEN_CHARS


# One plain ASCII address, nothing that could make the To header say more than it.
_PLAIN_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")


def _wire(text: str) -> bytes:
    """``text`` as a 7bit/8bit body ends on the wire: CRLF line ends, one after the last."""
    return (text + "\n").replace("\n", "\r\n").encode("utf-8")


class Composer:
    """The messages of one kind for one hand-off: rendered once, addressed per row (and
    given its recipient's pick-up link when ``links`` is set)."""

    def __init__(
        self, *, subject: str, body: str, settings: Settings, links: RecipientLinks | None = None
    ) -> None:
        self.subject = subject
        self.body = body
        self.settings = settings
        self._links = links
        self._refusal: str | None = None
        # The template's stand-in link paragraph, as its last bytes; None with links on:
        # each copy is built whole (a body that cannot be sent as it is).
        self._tail: bytes | None = None
        try:
            if links is None:
                self._template = build_message(
                    delivery_id=_ID_MARK, to=_TO_MARK, subject=subject, body=body, settings=settings
                )
            else:
                standin = pickup_paragraph(links.prefix + _TOKEN_MARK)
                cte = verbatim_cte(body + standin)
                self._template = build_message(
                    delivery_id=_ID_MARK,
                    to=_TO_MARK,
                    subject=subject,
                    body=body + standin,
                    settings=settings,
                    cte=cte,
                )
                if cte is not None and self._template.endswith(_wire(standin)):
                    self._tail = _wire(standin)
        except MalformedMessage as exc:
            log.error("e-mail not sent: its headers would not be the ones Baton writes (%s)", exc)
            self._refusal = f"message refused before sending: {exc}"[:200]
            self._template = b""

    def _raw(self, claim: Claim, to: str) -> bytes:
        url = self._links.url_for(to) if self._links is not None else None
        if self._links is not None and self._tail is None:
            body = self.body + (pickup_paragraph(url) if url else "")
            return build_message(
                delivery_id=claim.id, to=to, subject=self.subject, body=body, settings=self.settings
            )
        raw = self._template.replace(_TO_MARK.encode(), to.encode(), 1)
        raw = raw.replace(_ID_MARK.encode(), str(claim.id).encode(), 1)
        if self._tail is not None:
            # The body's last line end stays when an address has no link (nobody eligible).
            raw = raw[: -len(self._tail)] + (_wire(pickup_paragraph(url)) if url else b"\r\n")
        check_header_lines(raw, HEADER_NAMES)  # the bytes that leave, ~µs
        return raw

    def __call__(self, claim: Claim) -> Outgoing:
        if self._refusal is not None:
            raise SendError(self._refusal, permanent=True)
        to = address_of(claim.recipient)
        if not (to.isascii() and to.isprintable() and _PLAIN_ADDRESS.fullmatch(to)):
            # Internationalised addresses need SMTPUTF8 end to end, which Baton does not speak.
            raise SendError(f"address {to!r} is not plain ASCII; not sent", permanent=True)
        try:
            raw = self._raw(claim, to)
        except MalformedMessage as exc:
            log.error("e-mail to %s not sent: its headers are not the ones Baton writes (%s)", to, exc)
            raise SendError(f"message refused before sending: {exc}"[:200], permanent=True) from None
        return Outgoing(
            delivery_id=claim.id, mail_from=self.settings.mail_from, to=to, subject=self.subject, raw=raw
        )


def composer(
    ctx: HandoffContext, kind: MailKind, settings: Settings, links: RecipientLinks | None = None
) -> Composer:
    """The messages of ``kind`` about ``ctx``'s hand-off (each with its recipient's
    pick-up link when ``links`` is given)."""
    subject, body = subject_and_body(ctx, kind, settings)
    return Composer(subject=subject, body=body, settings=settings, links=links)
