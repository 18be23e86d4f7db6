"""An SMTP server that keeps a message and answers its DATA late: the message still
reaches the senior once (RFC 5321 §4.5.3.2.6; docs/background.md, the e-mails the chaos
test once saw twice).

The real aiosmtplib client of ``actors.mail_transport`` against the aiosmtpd fake, which stores
each message first and only then holds its 250 past the command timeout.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import asyncpg

from tests.api.conftest import Tenant
from tests.fakes.smtp import FakeSmtp

from .conftest import escalation_session, eventually, settled

if TYPE_CHECKING:  # actors bind to REDIS_URL when imported: only for the types
    from actors.mail_message import Composer

COMMAND_TIMEOUT_S = 0.5
# Four command timeouts late, and past the old lease of a row (twice the command
# timeout), yet well inside the wait for DATA's reply.
LATE_REPLY_S = 2.0
DATA_TIMEOUT_S = 10.0
ROUNDS = 3  # the batch, then what Dramatiq would retry
WAIT_S = 20


async def _one_email(acme: Tenant) -> tuple[uuid.UUID, uuid.UUID, str]:
    from actors.deliveries import ensure

    tech = await acme.user(name="Tess Tech")
    senior = await acme.user("engineer")
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    handoff_id = uuid.UUID(created["id"])
    address = f"{senior.id.hex[:8]}@example.com"
    rows = await ensure(acme.account_id, handoff_id, "email", [address])
    return handoff_id, rows[address], address


def _slow_server(environment: Callable[..., None], smtp: FakeSmtp) -> None:
    environment(
        SMTP_URL=smtp.url,
        BATON_DELIVERY_TIMEOUT_S=str(COMMAND_TIMEOUT_S),
        BATON_SMTP_DATA_TIMEOUT_S=str(DATA_TIMEOUT_S),
    )
    smtp.data_reply_delay_s = LATE_REPLY_S


async def _one_email_to_a_slow_server(
    acme: Tenant, smtp: FakeSmtp, environment: Callable[..., None]
) -> tuple[uuid.UUID, str, Composer]:
    """One e-mail row, a server that answers DATA late: (delivery id, address, composer)."""
    from actors.context import load
    from actors.mail_message import composer
    from settings import get_settings

    handoff_id, delivery_id, address = await _one_email(acme)
    _slow_server(environment, smtp)
    ctx = await load(handoff_id)
    assert ctx is not None
    return delivery_id, address, composer(ctx, "escalation", get_settings())


async def _row(db: asyncpg.Connection, delivery_id: uuid.UUID) -> tuple[str, int]:
    row = await db.fetchrow("SELECT status, attempts FROM deliveries WHERE id = $1", delivery_id)
    assert row is not None
    return row["status"], row["attempts"]


async def _messages(smtp: FakeSmtp) -> int:
    return len(smtp.messages())


async def test_a_250_to_data_later_than_the_command_timeout_still_means_one_copy(
    acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp, environment: Callable[..., None]
) -> None:
    from actors.deliveries import Outcome
    from actors.mail_batches import send_rows

    delivery_id, address, compose = await _one_email_to_a_slow_server(acme, smtp, environment)

    outcomes: list[Outcome] = []
    for _ in range(ROUNDS):  # the batch, and Dramatiq's retries while a send needs one
        outcomes = await send_rows([delivery_id], compose)
        if not any(outcome.needs_retry for outcome in outcomes):
            break
    await settled(lambda: _messages(smtp))

    assert smtp.count_by_recipient() == {address: 1}
    assert outcomes == [Outcome.SENT]
    assert await _row(db, delivery_id) == ("sent", 1)


async def test_a_redelivered_batch_leaves_a_row_whose_250_is_still_coming_to_its_attempt(
    acme: Tenant, db: asyncpg.Connection, smtp: FakeSmtp, environment: Callable[..., None]
) -> None:
    from actors.deliveries import Outcome
    from actors.mail_batches import send_rows

    delivery_id, address, compose = await _one_email_to_a_slow_server(acme, smtp, environment)

    first = asyncio.ensure_future(send_rows([delivery_id], compose))
    await eventually(lambda: _messages(smtp), WAIT_S, "the server to keep the message")
    # The first attempt has been waiting for the 250 longer than twice the command
    # timeout (the old lease) when the same batch is delivered again (Redis restarted,
    # a worker's heartbeat late, the fan-out retried).
    await db.execute(
        "UPDATE deliveries SET updated_at = now() - make_interval(secs => $2) WHERE id = $1",
        delivery_id,
        2 * COMMAND_TIMEOUT_S + 1,
    )
    again = await send_rows([delivery_id], compose)
    done = await first
    await settled(lambda: _messages(smtp))

    assert again == [Outcome.IN_FLIGHT] and done == [Outcome.SENT]
    assert smtp.count_by_recipient() == {address: 1}
    assert await _row(db, delivery_id) == ("sent", 1)
