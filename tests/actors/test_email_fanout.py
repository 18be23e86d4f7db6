"""E-mail: one message per eligible senior, each exactly once, whatever the SMTP server does."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from tests.api.conftest import Tenant, settings_with
from tests.conftest import BatonProcesses
from tests.fakes.smtp import FakeSmtp

from .conftest import escalation_session, eventually, settled, worker_env

WAIT_S = 40


def _address(person_id: uuid.UUID) -> str:
    return f"{person_id.hex[:8]}@example.com"


async def test_smtp_down_then_up_sends_each_email_once_and_a_refused_address_fails_alone(
    baton: BatonProcesses, acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp
) -> None:
    tech = await acme.user(name="Tess Tech")
    seniors = [await acme.user("engineer") for _ in range(5)]
    refused = seniors[-1]
    smtp.refuse[_address(refused.id)] = "550 5.1.1 <no-such-user>: Recipient address rejected"
    smtp.down()
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    handoff_id = uuid.UUID(created["id"])
    worker = baton.worker(env=worker_env(smtp.env()))

    async def tried_while_down() -> bool:
        return bool(
            await db.fetchval(
                "SELECT bool_and(attempts >= 1 AND status = 'pending' "
                "                AND last_error LIKE 'SMTP server unreachable%') "
                "FROM deliveries WHERE handoff_id = $1 AND channel = 'email'",
                handoff_id,
            )
        )

    await eventually(tried_while_down, WAIT_S, "every e-mail to be tried while SMTP is down", worker.log)
    smtp.up()

    async def statuses() -> dict[str, str]:
        rows = await db.fetch(
            "SELECT recipient, status FROM deliveries WHERE handoff_id = $1 AND channel = 'email'", handoff_id
        )
        return {r["recipient"]: r["status"] for r in rows}

    async def finished() -> dict[str, str] | None:
        found = await statuses()
        return found if not {"pending", "sending"} & set(found.values()) else None

    final = await eventually(finished, WAIT_S, "every e-mail to be sent or failed", worker.log)
    await settled(lambda: _count(smtp))

    assert final == {_address(s.id): "failed" if s is refused else "sent" for s in seniors}
    assert smtp.count_by_recipient() == {_address(s.id): 1 for s in seniors if s is not refused}
    failed = await db.fetchrow(
        "SELECT attempts, last_error FROM deliveries WHERE recipient = $1", _address(refused.id)
    )
    assert failed["last_error"].startswith("SMTP 550")
    message_ids = {str(m.message["Message-ID"]) for m in smtp.messages()}
    assert len(message_ids) == 4  # one per delivery row


async def test_without_smtp_url_each_email_is_written_under_the_data_folder(
    acme: Tenant, db: asyncpg.Connection, tmp_path: Path
) -> None:
    from actors.context import load
    from actors.deliveries import Outcome, ensure
    from actors.mail_batches import send_rows
    from actors.mail_message import composer

    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("owner")
    created = await acme.handed_off(
        tech, await escalation_session(acme, tech), "escalate", engineer_notes="Help"
    )
    handoff_id = uuid.UUID(created["id"])
    rows = await ensure(acme.account_id, handoff_id, "email", [_address(senior.id)])
    settings = settings_with(smtp_url=None, data_dir=str(tmp_path), frontend_url=None)
    ctx = await load(handoff_id)
    assert ctx is not None

    outcomes = await send_rows(list(rows.values()), composer(ctx, "escalation", settings), settings=settings)
    again = await send_rows(list(rows.values()), composer(ctx, "escalation", settings), settings=settings)

    assert outcomes == [Outcome.SENT] and again == [Outcome.ALREADY_SENT]
    [written] = list((tmp_path / "mail").glob("*.eml"))
    text = written.read_text()
    assert f"To: {_address(senior.id)}" in text
    assert "Reason: Help" in text and "Priority: normal" in text
    assert "/escalations" not in text  # no FRONTEND_URL, no link


async def _count(smtp: FakeSmtp) -> int:
    return len(smtp.messages())


async def test_each_copy_is_addressed_to_its_recipient_whatever_the_problem_text_says(
    acme: Tenant, db: asyncpg.Connection, tmp_path: Path
) -> None:
    from actors.context import load
    from actors.deliveries import Outcome, ensure
    from actors.mail_batches import send_rows
    from actors.mail_message import _ID_MARK, _TO_MARK, composer

    tech = await acme.user(name="Tess Tech")
    hostile = f"Printer {_TO_MARK} {_ID_MARK}\r\nBcc: everyone@example.com"
    session_id = await escalation_session(acme, tech, problem_summary=hostile)
    handoff_id = uuid.UUID((await acme.handed_off(tech, session_id, "escalate"))["id"])
    rows = await ensure(
        acme.account_id, handoff_id, "email", ["a@example.com", "b@example.com", "zoë@example.com"]
    )
    settings = settings_with(smtp_url=None, data_dir=str(tmp_path))
    ctx = await load(handoff_id)
    assert ctx is not None

    outcomes = await send_rows(list(rows.values()), composer(ctx, "escalation", settings), settings=settings)

    assert sorted(o.value for o in outcomes) == ["failed", "sent", "sent"]  # zoë: SMTPUTF8 not spoken
    for address in ("a@example.com", "b@example.com"):
        text = (tmp_path / "mail" / f"{rows[address]}.eml").read_text()
        assert f"To: {address}\r\n" in text or f"To: {address}\n" in text
        assert f"Message-ID: <{rows[address]}@localhost>" in text
        assert "\nBcc:" not in text
    assert Outcome.FAILED in outcomes
