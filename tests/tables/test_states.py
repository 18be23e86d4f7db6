"""The state machine (tables/states.py) and the migrated database agree, pair by pair.

Every pair of hand-off states is tried on the machine and on a row: a change the machine
names is accepted by both, every other one refused by both (the database's trigger
``session_handoffs_state_transition``). Session statuses are walked on the machine (the
database holds a session only to the known statuses: the host app may set any of them).
The expected tables are written out here from SPEC, so the machine cannot drift from
SPEC by agreeing with itself.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tables import states
from tables.enums import HANDOFF_STATES, PRIORITIES, SESSION_STATUSES

pytestmark = pytest.mark.asyncio

# SPEC "Session and hand-off states", "Claiming", second edition "resolve".
HANDOFF_CHANGES = {
    ("open", "claimed"),  # claim
    ("claimed", "open"),  # release
    ("open", "superseded"),  # an escalation of the parked session
    ("open", "resolved"),  # resolve / return by an owner or admin, withdraw by its creator
    ("claimed", "resolved"),  # resolve / return by its claimer, or an owner or admin
}
# The changes Baton makes to a session (the host app may set any status with a PUT).
SESSION_CHANGES = {
    ("active", "paused"),  # park
    ("active", "escalated"),  # escalate
    ("paused", "escalated"),  # escalate a parked session
    *((status, "active") for status in SESSION_STATUSES if status != "active"),  # claim; return, withdraw
    *((status, "resolved") for status in SESSION_STATUSES if status != "resolved"),  # resolve
    # release: an active session goes back to whatever it was before the claim
    *(("active", status) for status in SESSION_STATUSES if status != "active"),
}

STATE_OF = "SELECT state FROM session_handoffs WHERE id = $1"
HANDOFF_PAIRS = [pair for pair in itertools.product(HANDOFF_STATES, repeat=2) if pair[0] != pair[1]]
SESSION_PAIRS = [pair for pair in itertools.product(SESSION_STATUSES, repeat=2) if pair[0] != pair[1]]


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _handoff_in(conn: asyncpg.Connection, state: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A park hand-off born in ``state`` (claimed by its account's second user when that
    state is held): (hand-off id, that user's id)."""
    account, creator, other, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Acme MSP')", account)
    await conn.executemany(
        "INSERT INTO users (id, account_id, email, name) VALUES ($1, $2, $3, 'Someone')",
        [(creator, account, "tech@example.com"), (other, account, "senior@example.com")],
    )
    await conn.execute(
        "INSERT INTO ai_sessions (id, account_id, user_id) VALUES ($1, $2, $3)", session, account, creator
    )
    handoff: uuid.UUID = await conn.fetchval(
        "INSERT INTO session_handoffs (session_id, account_id, handed_off_by, intent, state, claimed_by) "
        "VALUES ($1, $2, $3, 'park', $4, $5) RETURNING id",
        session,
        account,
        creator,
        state,
        other if state in states.HELD_STATES else None,
    )
    return handoff, other


@pytest.mark.parametrize(("source", "target"), HANDOFF_PAIRS)
async def test_a_handoff_state_change_is_allowed_by_the_machine_and_the_database_alike(
    connection: asyncpg.Connection, source: str, target: str
) -> None:
    allowed = (source, target) in HANDOFF_CHANGES
    assert states.handoff_may_go(source, target) is allowed
    handoff, other = await _handoff_in(connection, source)
    change = "UPDATE session_handoffs SET state = $2, claimed_by = $3 WHERE id = $1"
    holder = other if target in states.HELD_STATES else None

    if allowed:
        await connection.execute(change, handoff, target, holder)
        assert await connection.fetchval(STATE_OF, handoff) == target
    else:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await connection.execute(change, handoff, target, holder)
        assert refused.value.constraint_name == "session_handoffs_state_transition"
        assert f"from {source} to {target}" in str(refused.value)


async def test_the_machine_names_no_handoff_change_spec_does_not() -> None:
    assert states.handoff_changes() == HANDOFF_CHANGES
    assert set(states.FINAL_STATES) == {"superseded", "resolved"}


async def test_a_handoff_keeps_its_state_through_any_other_change(connection: asyncpg.Connection) -> None:
    handoff, _ = await _handoff_in(connection, "claimed")

    await connection.execute(
        "UPDATE session_handoffs SET priority = 'urgent', state = state WHERE id = $1", handoff
    )

    assert await connection.fetchval(STATE_OF.replace("state", "priority", 1), handoff) == "urgent"


async def test_a_value_that_is_no_state_is_refused_by_the_state_check_not_the_trigger(
    connection: asyncpg.Connection,
) -> None:
    handoff, _ = await _handoff_in(connection, "open")

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await connection.execute("UPDATE session_handoffs SET state = 'vacation' WHERE id = $1", handoff)

    assert refused.value.constraint_name == "session_handoffs_state_check"


async def test_only_a_park_is_ever_superseded(connection: asyncpg.Connection) -> None:
    handoff, _ = await _handoff_in(connection, "open")
    await connection.execute("UPDATE session_handoffs SET intent = 'escalate' WHERE id = $1", handoff)

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await connection.execute("UPDATE session_handoffs SET state = 'superseded' WHERE id = $1", handoff)

    assert refused.value.constraint_name == "session_handoffs_superseded_check"
    assert states.SUPERSEDES == {"escalate": ("park",), "park": ()}


async def test_a_resolved_handoff_may_keep_its_claimer_or_have_had_none(
    connection: asyncpg.Connection,
) -> None:
    claimed, _ = await _handoff_in(connection, "claimed")
    never_claimed, _ = await _handoff_in(connection, "open")

    await connection.execute("UPDATE session_handoffs SET state = 'resolved' WHERE id = $1", claimed)
    await connection.execute("UPDATE session_handoffs SET state = 'resolved' WHERE id = $1", never_claimed)

    holders = await connection.fetch(
        "SELECT claimed_by IS NOT NULL AS held FROM session_handoffs WHERE id = ANY($1) ORDER BY held",
        [claimed, never_claimed],
    )
    assert [row["held"] for row in holders] == [False, True]


@pytest.mark.parametrize(("source", "target"), SESSION_PAIRS)
async def test_a_session_status_change_is_one_baton_makes_or_none(source: str, target: str) -> None:
    assert states.session_may_go(source, target) is ((source, target) in SESSION_CHANGES)


HAND_OFFS = list(itertools.product(("park", "escalate"), SESSION_STATUSES))


@pytest.mark.parametrize(("intent", "status"), HAND_OFFS)
async def test_a_session_is_handed_off_only_from_the_statuses_spec_names(intent: str, status: str) -> None:
    allowed = {"park": {"active"}, "escalate": {"active", "paused"}}
    assert states.may_hand_off(intent, status) is (status in allowed[intent])  # type: ignore[arg-type]


async def test_an_escalation_supersedes_only_the_park_of_a_paused_session() -> None:
    assert states.supersedes("escalate", "paused", "park")
    assert not states.supersedes("escalate", "paused", "escalate")
    assert not states.supersedes("escalate", "active", "park")
    assert not any(states.supersedes("park", status, "park") for status in SESSION_STATUSES)


async def test_who_may_make_each_transition() -> None:
    creator, holder, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    on = {"creator_id": creator, "holder_id": holder}

    def caller(user: uuid.UUID, role: str = "engineer") -> states.Caller:
        return states.Caller(id=user, role=role)  # type: ignore[arg-type]

    # The creator cannot claim; anyone else eligible can.
    assert not states.CLAIM.permits(caller(creator), creator_id=creator, holder_id=None)
    assert states.CLAIM.permits(caller(other, "technician"), creator_id=creator, holder_id=None)
    # The claimer, or an owner or admin, may release or resolve; nobody else.
    for transition in (states.RELEASE, states.RESOLVE, states.RETURN):
        assert transition.permits(caller(holder), **on)
        assert transition.permits(caller(other, "owner"), **on)
        assert transition.permits(caller(other, "admin"), **on)
        assert not transition.permits(caller(other, "engineer"), **on)
        assert not transition.permits(caller(creator, "technician"), **on)
        assert not transition.permits(None, **on)
    # Only its creator withdraws it, and only while it is open.
    assert states.WITHDRAW.permits(caller(creator, "technician"), **on)
    assert not states.WITHDRAW.permits(caller(other, "owner"), **on)
    assert states.WITHDRAW.sources == ("open",)
    # Baton's own transitions are made on no user's request.
    for transition in (states.SUPERSEDE, states.REMIND):
        assert transition.permits(None, **on)
        assert not transition.permits(caller(other, "owner"), **on)


async def test_the_reminder_raises_a_priority_one_step_in_python_and_in_sql_alike(
    connection: asyncpg.Connection,
) -> None:
    expected = {"low": "normal", "normal": "high", "high": "urgent", "urgent": "urgent"}
    assert {p: states.raised_priority(p) for p in PRIORITIES} == expected
    sql = f"SELECT {states.raised_priority_sql('p')} FROM (VALUES ($1::text)) AS t(p)"
    assert {p: await connection.fetchval(sql, p) for p in PRIORITIES} == expected
    assert states.REMIND.sources == ("open",) and states.REMINDED_INTENTS == ("escalate",)
