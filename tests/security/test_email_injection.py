"""No user text can add an e-mail header, on any Python Baton accepts (SPEC "Injection").

CPython's header folding before 3.11.10 / 3.12.5 writes the CR/LF of a decoded RFC 2047
encoded-word out raw: a problem summary became real ``Reply-To``, ``Bcc`` and
``Content-Type`` headers and an HTML body in every senior's e-mail. The first test is the
probe's own, through a real worker and the aiosmtpd fake; the second runs many shapes of
it through the composer the worker uses.
"""

from __future__ import annotations

import base64
import datetime
import stat
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from tests.actors import conftest as actor_fixtures
from tests.actors.conftest import escalation_session, eventually, settled, worker_env
from tests.api.conftest import Tenant, settings_with
from tests.conftest import BatonProcesses
from tests.fakes.smtp import FakeSmtp, Received

# The fixtures of tests/actors, by name (this folder has no conftest of its own).
client, tenant = actor_fixtures.client, actor_fixtures.tenant
acme, smtp = actor_fixtures.acme, actor_fixtures.smtp

if TYPE_CHECKING:  # actors bind to REDIS_URL when imported: only for the types
    from actors.context import HandoffContext

WAIT_S = 40
PROBE_SUMMARY = (
    "=?utf-8?q?Printer_down=0D=0AReply-To:_x@attacker.test=0D=0ABcc:_y@attacker.test"
    "=0D=0AContent-Type:_text/html=0D=0A=0D=0A<h1>pwned</h1>?="
)
BATON_HEADERS = [
    "From",
    "To",
    "Message-ID",
    "Date",
    "Subject",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
]


def _b(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


# Every character str.splitlines breaks on, raw and inside encoded-words.
LINE_BREAKS = ["\r\n", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
INJECTION_SHAPES = [
    PROBE_SUMMARY,
    "=?UtF-8?Q?Printer_down=0d=0aBcc:_y@attacker.test?=",  # mixed case
    _b("Printer down\r\nBcc: y@attacker.test\r\n\r\n<h1>pwned</h1>"),
    _b("Printer down\r\nBcc: y@attacker.test").upper().replace("=?UTF-8?B?", "=?utf-8?B?"),
    # folded: the attack split over two encoded-words and a fold
    "=?utf-8?q?Printer_down?=\r\n =?utf-8?q?=0D=0ABcc:_y@attacker.test?=",
    "=?utf-8?q?Printer_down?=\r\n\t" + _b("\r\nBcc: y@attacker.test"),
    # inside a word, no space either side
    "Printer=?utf-8?q?=0D=0ABcc:_y@attacker.test?=down",
    # a Latin-1 NEL
    "=?iso-8859-1?q?Printer_down=85Bcc:_y@attacker.test?=",
    "Printer down\x00Bcc: y@attacker.test",
    *[f"Printer down{brk}Bcc: y@attacker.test" for brk in LINE_BREAKS],
    *[_b(f"Printer down{brk}Bcc: y@attacker.test") for brk in LINE_BREAKS],
    *[
        "=?utf-8?q?Printer_down"
        + "".join(f"={byte:02X}" for byte in brk.encode("utf-8"))
        + "Bcc:_y@attacker.test?="
        for brk in LINE_BREAKS
    ],
    "Drucker läuft nicht\r\nBcc: y@attacker.test " * 6,  # non-ASCII, long: encoded-words of ours
]


def _words(text: str) -> list[str]:
    """``text`` split at every space, line break or other unprintable character, and at
    every encoded-word opener."""
    cut = "".join(ch if ch.isprintable() else " " for ch in text).replace("=?", " ")
    return cut.split()


def _parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _assert_only_batons_headers(message: EmailMessage) -> None:
    assert list(message.keys()) == BATON_HEADERS
    assert message["Reply-To"] is None and message["Bcc"] is None
    assert not message.is_multipart() and message.get_content_type() == "text/plain"
    assert str(message["Subject"]).isprintable()


async def test_an_encoded_word_in_the_problem_summary_adds_no_header_to_the_seniors_email(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer")
    session_id = await escalation_session(acme, tech, problem_summary=PROBE_SUMMARY)
    await acme.handed_off(tech, session_id, "escalate", engineer_notes="Printer queue stuck")
    worker = baton.worker(env=worker_env(smtp.env()))

    async def received() -> list[Received]:
        return smtp.messages()

    await eventually(received, WAIT_S, "the senior's e-mail", worker.log)
    [mail] = await settled(received)

    assert mail.rcpt_tos == (f"{senior.id.hex[:8]}@example.com",)
    _assert_only_batons_headers(mail.message)
    assert mail.subject.startswith("New escalation: ")
    assert "Printer_down" in mail.subject and "Reply-To:_x@attacker.test" in mail.subject
    assert "<h1>" not in mail.body and "A teammate has escalated a session" in mail.body


def _context(problem_summary: str) -> HandoffContext:
    from actors.context import HandoffContext

    return HandoffContext(
        handoff_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        intent="escalate",
        state="open",
        priority="high",
        engineer_notes=problem_summary,
        snapshot={},
        created_at=datetime.datetime.now(datetime.UTC),
        handed_off_by=uuid.uuid4(),
        handed_off_by_name="Tess Tech",
        claimed_by=None,
        assessment_status="pending",
        ai_assessment=None,
        ai_assessment_data=None,
        briefing=None,
        briefing_status=None,
        reminded_at=None,
        problem_summary=problem_summary,
        problem_domain=None,
        escalation_reason=None,
        psa_ticket_id=None,
        psa_connection_id=None,
    )


@pytest.mark.parametrize("kind", ["escalation", "reminder"])
@pytest.mark.parametrize("shape", INJECTION_SHAPES, ids=range(len(INJECTION_SHAPES)))
def test_no_shape_of_user_text_adds_a_header_to_the_message_as_built_and_flattened(
    shape: str, kind: str
) -> None:
    from actors.deliveries import Claim
    from actors.mail_message import composer

    settings = settings_with(smtp_url=None)
    outgoing = composer(_context(shape), kind, settings)(
        Claim(id=uuid.uuid4(), recipient="senior@example.com", attempts=0, interrupted=False)
    )

    head = outgoing.raw.partition(b"\r\n\r\n")[0]
    assert b"\nBcc" not in head and b"\nbcc" not in head.lower()
    message = _parsed(outgoing.raw)
    _assert_only_batons_headers(message)
    assert str(message["To"]) == "senior@example.com"
    subject = str(message["Subject"]).strip()
    assert subject.startswith("New escalation: " if kind == "escalation" else "Still open: ")
    for word in _words(shape)[:4]:  # the user's words still show, as they wrote them
        assert word in subject
    assert "=?" not in subject  # nothing a reader would decode again


@pytest.mark.parametrize("folder_existed", [False, True])
def test_caught_mail_in_development_is_readable_by_batons_user_alone(
    tmp_path: Path, folder_existed: bool
) -> None:
    import asyncio

    from actors.mail_message import Outgoing
    from actors.mail_transport import FolderSender

    folder = tmp_path / "mail"
    if folder_existed:  # as an earlier version left it
        folder.mkdir()
        folder.chmod(0o755)
    delivery_id = uuid.uuid4()
    outgoing = Outgoing(delivery_id, "baton@localhost", "senior@example.com", "New escalation", b"x\r\n")

    asyncio.run(FolderSender(folder).send(outgoing))

    written = folder / f"{delivery_id}.eml"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "smuggled",
    [b"Bcc: y@attacker.test\r\n", b"reply-to: x@attacker.test\r\n", b"X-Note: a\nBcc: y@attacker.test\r\n"],
    ids=["a Bcc line", "a lower-case Reply-To", "a bare LF inside a line"],
)
def test_a_message_whose_headers_are_not_the_ones_baton_wrote_is_never_sent(smuggled: bytes) -> None:
    """The last wall, should anything upstream ever let a header through: the flattened
    message is parsed back, and a delivery of it fails for good instead of going out."""
    from actors.deliveries import Claim, SendError
    from actors.mail_headers import MalformedMessage, check_message
    from actors.mail_message import Composer, build_message

    settings = settings_with(smtp_url=None)
    raw = build_message(
        delivery_id=uuid.uuid4(),
        to="senior@example.com",
        subject="Printer down",
        body="Hi",
        settings=settings,
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    tampered = head + b"\r\n" + smuggled.rstrip(b"\r\n") + b"\r\n\r\n" + body

    check_message(raw, BATON_HEADERS)  # Baton's own passes
    with pytest.raises(MalformedMessage):
        check_message(tampered, BATON_HEADERS)

    composer = Composer(subject="Printer down", body="Hi", settings=settings)
    composer._template = tampered  # as if the build had let it through
    with pytest.raises(SendError) as refused:
        composer(Claim(id=uuid.uuid4(), recipient="senior@example.com", attempts=0, interrupted=False))
    assert refused.value.permanent
