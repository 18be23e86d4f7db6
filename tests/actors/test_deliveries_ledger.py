"""The ledger's promises: one claimer per row, a crashed claim recovered only once stale,
attempts bounded."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.api.conftest import Tenant

from .conftest import escalation_session


async def _handoff(acme: Tenant) -> uuid.UUID:
    tech = await acme.user(name="Tess Tech")
    created = await acme.handed_off(tech, await escalation_session(acme, tech), "escalate")
    return uuid.UUID(created["id"])


async def test_of_many_concurrent_claims_on_one_row_exactly_one_wins(acme: Tenant) -> None:
    from actors.deliveries import Claim, Outcome, claim, ensure

    handoff_id = await _handoff(acme)
    rows = await ensure(acme.account_id, handoff_id, "email", ["a@example.com"])
    again = await ensure(acme.account_id, handoff_id, "email", ["a@example.com"])
    assert again == rows  # a retried fan-out finds its rows

    results = await asyncio.gather(*(claim(rows["a@example.com"]) for _ in range(8)))

    assert sum(isinstance(r, Claim) for r in results) == 1
    assert [r for r in results if not isinstance(r, Claim)] == [Outcome.IN_FLIGHT] * 7


async def test_a_row_left_sending_is_claimed_again_only_once_it_is_stale(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from actors.deliveries import INTERRUPTED_NOTE, Claim, Outcome, claim, ensure, stale_after_s

    handoff_id = await _handoff(acme)
    delivery_id = (await ensure(acme.account_id, handoff_id, "slack", ["channel-1"]))["channel-1"]
    first = await claim(delivery_id)
    assert isinstance(first, Claim) and not first.interrupted

    assert await claim(delivery_id) is Outcome.IN_FLIGHT  # a live attempt may still be on it
    await db.execute(
        "UPDATE deliveries SET updated_at = now() - make_interval(secs => $2) WHERE id = $1",
        delivery_id,
        stale_after_s() + 1,
    )
    second = await claim(delivery_id)

    assert isinstance(second, Claim) and second.interrupted and second.attempts == 2
    assert (
        await db.fetchval("SELECT last_error FROM deliveries WHERE id = $1", delivery_id) == INTERRUPTED_NOTE
    )


async def test_an_attempt_whose_row_was_taken_over_cannot_mark_it(
    acme: Tenant, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    from actors.deliveries import Claim, Outcome, claim, ensure, mark_retry, mark_sent, stale_after_s

    handoff_id = await _handoff(acme)
    rows = await ensure(acme.account_id, handoff_id, "email", ["late@example.com"])
    delivery_id = rows["late@example.com"]
    late = await claim(delivery_id)
    await db.execute(
        "UPDATE deliveries SET updated_at = now() - make_interval(secs => $2) WHERE id = $1",
        delivery_id,
        stale_after_s() + 1,
    )
    current = await claim(delivery_id)
    assert isinstance(late, Claim) and isinstance(current, Claim)

    # The first attempt was alive after all: its marks must not touch the second's claim.
    assert await mark_retry(late, "SMTP connection lost", max_attempts=5) is Outcome.IN_FLIGHT
    await mark_sent(late)
    still = await db.fetchrow("SELECT status, attempts FROM deliveries WHERE id = $1", delivery_id)
    assert (still["status"], still["attempts"]) == ("sending", 2)
    assert "no longer its claim" in caplog.text

    await mark_sent(current)
    assert await db.fetchval("SELECT status FROM deliveries WHERE id = $1", delivery_id) == "sent"


async def test_a_send_failing_every_time_ends_failed_after_its_attempts(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from actors.deliveries import Claim, Outcome, SendError, deliver, ensure

    handoff_id = await _handoff(acme)
    delivery_id = (await ensure(acme.account_id, handoff_id, "teams", ["channel-2"]))["channel-2"]

    async def refuse(claim: Claim) -> None:
        raise SendError("HTTP 503: busy")

    outcomes = [await deliver(delivery_id, refuse, max_attempts=3) for _ in range(4)]

    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED, Outcome.FAILED]
    row = await db.fetchrow("SELECT status, attempts, last_error FROM deliveries WHERE id = $1", delivery_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 3, "HTTP 503: busy")


async def test_deliveries_of_another_accounts_handoff_are_not_found(
    acme: Tenant, db: asyncpg.Connection
) -> None:
    from tests.api.conftest import API, new_tenant

    handoff_id = await _handoff(acme)
    globex = await new_tenant(db, acme.client, "Globex")
    outsider = await globex.user("owner")

    response = await acme.client.get(f"{API}/handoffs/{handoff_id}/deliveries", headers=outsider.headers)

    assert response.status_code == 404
