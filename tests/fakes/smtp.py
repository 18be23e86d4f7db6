"""A local SMTP server (aiosmtpd) that keeps every message it accepted.

``down()`` closes the port (connections are refused, as with a server that is off) and
``up()`` opens it again on the same port. ``rcpt_delay_s`` holds each RCPT TO before
answering: a worker killed then has the message mid-transaction, before DATA, so the
server never accepts it; the repeat after the restart is the only copy.
``data_reply_delay_s`` keeps each message at once and only then holds its ``250``: a
server that took the message but answers late (RFC 5321 §4.5.3.2.6, a busy queue
writer); a client that gives up on the reply does not know the message went through.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from cli.processes import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    received_at: float = field(default_factory=time.monotonic)  # when DATA was accepted

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        # Python folds a long Subject onto its own line; the fold's space is not content.
        return str(self.message["Subject"]).strip()

    @property
    def body(self) -> str:
        return str(self.message.get_content())


class _Handler:
    def __init__(self, owner: FakeSmtp) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.owner.rcpt_delay_s:
            await asyncio.sleep(self.owner.rcpt_delay_s)
        refusal = self.owner.refuse.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=message_from_bytes(
                envelope.original_content or envelope.content, _class=EmailMessage, policy=policy.default
            ),
        )
        with self.owner.lock:
            self.owner.received.append(received)
        if self.owner.data_reply_delay_s:
            await asyncio.sleep(self.owner.data_reply_delay_s)
        return "250 Message accepted for delivery"


class FakeSmtp:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.rcpt_delay_s = 0.0
        self.data_reply_delay_s = 0.0  # the message is kept before this wait, the 250 after
        self.refuse: dict[str, str] = {}  # address -> "550 …" reply
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"SMTP_URL": self.url}

    def up(self) -> FakeSmtp:
        if self._controller is None:
            self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    start = up

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    stop = down

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def count_by_recipient(self) -> Counter[str]:
        return Counter(rcpt.lower() for received in self.messages() for rcpt in received.rcpt_tos)

    def __enter__(self) -> FakeSmtp:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
