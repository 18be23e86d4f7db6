"""The sweep: work whose message was lost in the broker is sent again.

Two kinds of lost work. **A job** (an outbox row) sent to Dramatiq but never done
(``outbox.done_at``, set by ``actors.outbox.OutboxJobDone``) for
``BATON_DELIVERY_SWEEP_AFTER_S``: the row is made unsent again, and the relay sends it,
at most ``JOB_SENDS_MAX`` times in all. **A delivery row**, below.

A ``deliveries`` row is written by its job (the e-mail fan-out, chat, the PSA push)
before the send, and that job's retries see it through. If the message carrying the
send is lost instead (its retry could not be enqueued while Redis restarted; a worker
died and Dramatiq never gave its message back), the row stays ``pending``, or
``sending`` with its lease run out, for good. When a worker starts, and then every half
``BATON_DELIVERY_SWEEP_AFTER_S`` (at most every ten minutes), one worker (the one that
takes a transaction-level advisory lock) writes an outbox job again for every hand-off
and channel with such rows; the relay sends it. Jobs are idempotent and the ledger's
claim sends a row at most once, so sweeping a row that was only slow costs a message,
never a second e-mail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from actors.job_delays import job_delays_s
from settings import get_settings
from tables import db
from tables.queries import deliveries as ledger
from tables.queries import outbox
from tables.queries.advisory_locks import try_transaction_lock

log = logging.getLogger("baton.deliveries")

T = TypeVar("T")

SWEEP_INTERVAL_MAX_S = 600.0
JOB_SENDS_MAX = 5  # a job sent this many times in all is not swept again
# Older rows are given up on: their hand-off is long past help.
SWEEP_WINDOW_S = 24 * 3600.0
SWEEP_LOCK = "baton:delivery-sweep"

# The job that (re)sends a channel's rows of a hand-off; the reminder's rows are left
# to the reminder, which runs once.
JOB_OF_CHANNEL = {
    "email": "send_escalation_emails",
    "slack": "notify_chat",
    "teams": "notify_chat",
    "psa": "push_documentation",
}


TIER_JOB = "send_tier_messages"  # actors/tiers/messages.py
# An outcome's rows (a resolve's: actors/outcomes.py), by channel.
OUTCOME_JOB_OF_CHANNEL = {"email": "send_outcome_email", "psa": "push_outcome_note"}


def _job_of(row: ledger.StuckRows) -> tuple[Any, str, tuple[tuple[str, Any], ...]]:
    """(account, actor, payload items) of the job that sends ``row`` again."""
    if row.purpose == ledger.TIER_PURPOSE:
        payload = (
            ("handoff_id", str(row.handoff_id)),
            ("release_count", row.release_count),
            ("tier", row.tier),
            ("round", row.round),
        )
        return row.account_id, TIER_JOB, payload
    if row.purpose == ledger.OUTCOME_PURPOSE:
        return row.account_id, OUTCOME_JOB_OF_CHANNEL[row.channel], (("handoff_id", str(row.handoff_id)),)
    return row.account_id, JOB_OF_CHANNEL[row.channel], (("handoff_id", str(row.handoff_id)),)


def sweep_interval_s() -> float:
    return min(SWEEP_INTERVAL_MAX_S, get_settings().delivery_sweep_after_s / 2)


async def _alone(lock_name: str, work: Callable[[], Awaitable[list[T]]]) -> list[T]:
    """``work()`` in a transaction holding ``lock_name``; [] while another worker holds it
    (it is sweeping the same rows right now)."""
    async with db.transaction():
        if not await try_transaction_lock(name=lock_name):
            return []
        return await work()


async def sweep_lost_work(stuck_after_s: float | None = None) -> int:
    """Both sweeps; returns how many jobs are sent again. ``stuck_after_s`` defaults to
    ``BATON_DELIVERY_SWEEP_AFTER_S``: longer than any sending actor's retry backoff (300 s
    at most), so work still on its way is left alone."""
    if stuck_after_s is None:
        stuck_after_s = get_settings().delivery_sweep_after_s
    return await sweep_undone_jobs(stuck_after_s) + await sweep_stuck_deliveries(stuck_after_s)


async def sweep_undone_jobs(stuck_after_s: float) -> int:
    async def resend() -> list[outbox.ResentJob]:
        return await outbox.resend_undone(
            stuck_after_s=stuck_after_s,
            window_s=SWEEP_WINDOW_S,
            sends_max=JOB_SENDS_MAX,
            delays_s=job_delays_s(get_settings()),
        )

    jobs = await _alone(SWEEP_LOCK + ":jobs", resend)
    for job in jobs:
        log.warning(
            "job %s of hand-off %s sent but never done (a lost message?): sending it again",
            job.actor_name,
            job.handoff_id,
        )
    return len(jobs)


async def sweep_stuck_deliveries(stuck_after_s: float) -> int:
    """Write the jobs again for rows untouched ``stuck_after_s``; returns how many jobs."""

    async def rewrite() -> list[outbox.NewJob]:
        stuck = await ledger.stuck_rows(
            stuck_after_s=stuck_after_s, window_s=SWEEP_WINDOW_S, channels=list(JOB_OF_CHANNEL)
        )
        # One job per hand-off and actor: Slack and Teams rows are one chat job; a tier's
        # rows are one job of that tier (its key in the payload).
        wanted = {_job_of(row) for row in stuck}
        jobs = [
            outbox.NewJob(account_id=account_id, actor_name=actor_name, payload=dict(payload))
            for account_id, actor_name, payload in sorted(wanted, key=str)
        ]
        await outbox.write_jobs(jobs=jobs)
        return jobs

    jobs = await _alone(SWEEP_LOCK, rewrite)
    for job in jobs:
        log.warning(
            "deliveries of hand-off %s left unsent (a lost message?): %s written again",
            job.payload["handoff_id"],
            job.actor_name,
        )
    return len(jobs)
