"""Fire the tiers that are due, record the SLA breaches: a batch per transaction.

One transaction per batch of due hand-offs (locked ``FOR UPDATE SKIP LOCKED``, so the
engines of every worker process share the work and never fire one tier twice): for each,
the tier's recipients, its bell rows (rung right there), one ledger row per e-mail,
chat post and bell under the key hand-off x purpose ``tier`` x release count x tier x
round x channel x recipient, the schedule moved on to the next tier (or none), the
priority raised when the tier says so, a ``send_tier_messages`` job for its e-mails and
chat posts, and one ``announce_events`` job per account with the ``handoff_tier_notified``
events. Everything or nothing: a worker killed mid-batch leaves the tiers due, to fire
again whole; one killed after the commit leaves ledger rows the job (or the sweep) sends,
each at most once (the ledger's claim: actors/deliveries.py).

Breaches: ``breached_at := claim_due_at`` once, and ``handoff_sla_breached``, in the
same way.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from actors.metrics import SLA_BREACHES, TIERS_FIRED
from actors.tiers.recipients import tier_recipients
from inbox.events import Event, HandoffSlaBreached, HandoffTierNotified, Recipient, encode_event
from tables import db, tier_schedule
from tables.delivery import ANNOUNCE_EVENTS
from tables.policy_shapes import PolicyCopy, Tier
from tables.queries import outbox, tiers
from tables.queries.deliveries import SENT_AT_BIRTH_PREFIX, NewLedgerRow, tier_key
from tables.states import PRIORITY_STEP_UP

log = logging.getLogger("baton.tiers")

BATCH_HANDOFFS = 200
ESCALATED_KIND = "session.escalated"  # tier 0: the bell the first edition rang at create
STILL_OPEN_KIND = "session.escalation_reminder"  # later tiers, as the reminder's
SEND_TIER_MESSAGES = "send_tier_messages"
CHAT_KINDS = ("slack", "teams")


@dataclass
class _Batch:
    """What one transaction writes, gathered before the inserts."""

    bells: list[tiers.NewBell] = field(default_factory=list)
    rows: list[NewLedgerRow] = field(default_factory=list)
    jobs: list[outbox.NewJob] = field(default_factory=list)
    events: dict[uuid.UUID, list[Event]] = field(default_factory=lambda: defaultdict(list))
    moves: list[tiers.Move] = field(default_factory=list)
    fired_priorities: list[str] = field(default_factory=list)


def _title(tier_index: int, summary: str | None, ticket: str | None) -> str:
    problem = summary or "an active session"
    if ticket:
        problem = f"ticket #{ticket}: {problem}"
    return (
        f"New escalation: {problem}"
        if tier_index == tier_schedule.AT_CREATE_TIER
        else f"Still open: {problem}"
    )


def _fire(
    batch: _Batch,
    due: tiers.DueHandoff,
    policy: PolicyCopy,
    tier: Tier,
    *,
    people: list[tiers.Person],
    chats: list[tiers.ChatChannel],
    title: tiers.SessionTitle | None,
    priority: str,
) -> None:
    """Gather one tier's bells, ledger rows, job and event into ``batch``."""
    key = tier_key(release_count=due.release_count, tier=due.tier_next, round=due.tier_round)
    chosen = tier_recipients(
        tier, due.tier_next, people=people, creator_id=due.handed_off_by, target_user_id=due.target_user_id
    )
    channels = set(tier.channels)

    def row(channel: str, recipient: str) -> NewLedgerRow:
        return NewLedgerRow(
            account_id=due.account_id, handoff_id=due.id, key=key, channel=channel, recipient=recipient
        )

    if "bell" in channels:
        summary = title.problem_summary if title else None
        ticket = title.psa_ticket_id if title else None
        for person in chosen:
            batch.bells.append(
                tiers.NewBell(
                    account_id=due.account_id,
                    user_id=person.id,
                    kind=ESCALATED_KIND if due.tier_next == tier_schedule.AT_CREATE_TIER else STILL_OPEN_KIND,
                    title=_title(due.tier_next, summary, ticket),
                    body=f"Tier {due.tier_next} of its escalation policy; priority {priority}.",
                    handoff_id=due.id,
                    session_id=due.session_id,
                )
            )
            batch.rows.append(row("bell", f"{SENT_AT_BIRTH_PREFIX}{person.id}"))
    sends = 0
    if "email" in channels:
        for address in sorted({person.email for person in chosen if person.email}):
            batch.rows.append(row("email", address))
            sends += 1
    for chat in chats:
        if chat.kind in channels and chat.kind in CHAT_KINDS:
            batch.rows.append(row(chat.kind, str(chat.id)))
            sends += 1
    if sends:
        batch.jobs.append(
            outbox.NewJob(
                account_id=due.account_id,
                actor_name=SEND_TIER_MESSAGES,
                payload={
                    "handoff_id": str(due.id),
                    "release_count": due.release_count,
                    "tier": due.tier_next,
                    "round": due.tier_round,
                },
            )
        )
    batch.events[due.account_id].append(
        HandoffTierNotified(
            handoff_id=str(due.id),
            session_id=str(due.session_id),
            tier=due.tier_next,
            round=due.tier_round,
            recipients=[Recipient(id=str(person.id), name=person.name) for person in chosen],
        )
    )


def _announcements(events: dict[uuid.UUID, list[Event]]) -> list[outbox.NewJob]:
    """One ``announce_events`` job per account: the relay publishes it after the commit,
    once (its once-names come from the announcement id)."""
    return [
        outbox.NewJob(
            account_id=account_id,
            actor_name=ANNOUNCE_EVENTS,
            payload={
                "account_id": str(account_id),
                "announcement_id": str(uuid.uuid4()),
                "events": [msgspec.json.decode(encode_event(event)) for event in account_events],
            },
        )
        for account_id, account_events in events.items()
        if account_events
    ]


async def _fire_batch(now: datetime) -> int:
    """One batch of due tiers, in one transaction; how many hand-offs it took."""
    batch = _Batch()
    async with db.transaction():
        due_rows = await tiers.lock_due(now=now, limit=BATCH_HANDOFFS)
        if not due_rows:
            return 0
        account_ids = sorted({due.account_id for due in due_rows})
        people_of: dict[uuid.UUID, list[tiers.Person]] = defaultdict(list)
        for person in await tiers.eligible_people(account_ids=account_ids):
            people_of[person.account_id].append(person)
        chats_of: dict[uuid.UUID, list[tiers.ChatChannel]] = defaultdict(list)
        for chat in await tiers.enabled_chat_channels(account_ids=account_ids):
            chats_of[chat.account_id].append(chat)
        titles = await tiers.session_titles(session_ids=sorted({due.session_id for due in due_rows}))
        for due in due_rows:
            policy = msgspec.json.decode(
                due.policy if isinstance(due.policy, str | bytes) else db.dump_json(due.policy),
                type=PolicyCopy,
            )
            fired = tier_schedule.Due(due.tier_next, due.tier_round, due.tier_due_at)
            priority = due.priority
            if due.tier_next < len(policy.tiers):
                tier = policy.tiers[due.tier_next]
                if tier.raise_priority:
                    priority = PRIORITY_STEP_UP.get(priority, priority)
                _fire(
                    batch,
                    due,
                    policy,
                    tier,
                    people=people_of[due.account_id],
                    chats=chats_of[due.account_id],
                    title=titles.get(due.session_id),
                    priority=priority,
                )
                batch.fired_priorities.append(priority)
                following = tier_schedule.after_tier(policy, fired)
            else:
                following = None  # a copy with fewer tiers than its schedule: nothing more
            last_tier: dict[str, Any] = {"tier": fired.tier, "round": fired.round, "at": db.iso(fired.at)}
            batch.moves.append(
                tiers.Move(
                    handoff_id=due.id,
                    release_count=due.release_count,
                    tier=due.tier_next,
                    round=due.tier_round,
                    last_tier=last_tier,
                    next_tier=None if following is None else following.tier,
                    next_round=fired.round if following is None else following.round,
                    next_due_at=None if following is None else following.at,
                    priority=priority,
                )
            )
        await tiers.move_on(moves=batch.moves, now=now)
        await tiers.ring_bells(bells=batch.bells, now=now)
        await tiers.insert_ledger_rows(batch.rows)
        await outbox.write_jobs(jobs=batch.jobs + _announcements(batch.events))
    for priority in batch.fired_priorities:
        TIERS_FIRED.labels(priority).inc()
    log.info("tiers: %d fired (%d message(s) to send)", len(batch.fired_priorities), len(batch.jobs))
    return len(due_rows)


async def _breach_batch(now: datetime) -> int:
    async with db.transaction():
        breaches = await tiers.breach_due(now=now, limit=BATCH_HANDOFFS)
        if not breaches:
            return 0
        events: dict[uuid.UUID, list[Event]] = defaultdict(list)
        for breach in breaches:
            events[breach.account_id].append(
                HandoffSlaBreached(
                    handoff_id=str(breach.id),
                    session_id=str(breach.session_id),
                    claim_due_at=db.iso(breach.claim_due_at),
                )
            )
        await outbox.write_jobs(jobs=_announcements(events))
    for breach in breaches:
        SLA_BREACHES.labels(breach.priority).inc()
        log.info("hand-off %s: SLA breached (due %s, unclaimed)", breach.id, db.iso(breach.claim_due_at))
    return len(breaches)


async def fire_due(now: datetime) -> int:
    """Every tier due by ``now`` and every breach, batch after batch; how many in all."""
    done = 0
    while True:
        taken = await _fire_batch(now)
        done += taken
        if taken < BATCH_HANDOFFS:
            break
    while True:
        taken = await _breach_batch(now)
        done += taken
        if taken < BATCH_HANDOFFS:
            break
    return done
