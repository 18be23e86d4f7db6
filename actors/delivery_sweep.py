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
from typing import Any

import asyncpg

from settings import get_settings
from tables import db
from tables.delivery import ANNOUNCE_EVENTS

log = logging.getLogger("baton.deliveries")

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

TAKE_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext($1))"

RESEND_STUCK = """
INSERT INTO outbox (id, account_id, actor_name, payload, attempts, created_at)
SELECT gen_random_uuid(), account_id, actor_name,
       jsonb_build_object('handoff_id', handoff_id::text), 0, now()
FROM (
    SELECT DISTINCT d.account_id, d.handoff_id, job.actor_name
    FROM deliveries AS d
    JOIN unnest($3::text[], $4::text[]) AS job(channel, actor_name) ON job.channel = d.channel
    WHERE d.status IN ('pending', 'sending')
      AND d.updated_at < now() - make_interval(secs => $1)
      AND d.created_at > now() - make_interval(secs => $2)
) AS stuck
RETURNING actor_name, payload->>'handoff_id' AS handoff_id
"""


# Sent, never done, not announcements (the relay publishes those itself, done at once),
# and for a delayed job (the reminder) only once it is overdue by as long.
RESEND_UNDONE_JOBS = """
UPDATE outbox SET sent_at = NULL
WHERE sent_at IS NOT NULL AND done_at IS NULL
  AND sent_at < now() - make_interval(secs => $1)
  AND created_at > now() - make_interval(secs => $2)
  AND attempts < $3
  AND actor_name <> $6
  AND NOT EXISTS (
      SELECT 1 FROM unnest($4::text[], $5::float8[]) AS delayed(actor_name, delay_s)
      WHERE delayed.actor_name = outbox.actor_name
        AND outbox.created_at > now() - make_interval(secs => $1 + delayed.delay_s)
  )
RETURNING actor_name, payload->>'handoff_id' AS handoff_id
"""


def sweep_interval_s() -> float:
    return min(SWEEP_INTERVAL_MAX_S, get_settings().delivery_sweep_after_s / 2)


async def _fetch_alone(lock_name: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """``sql``'s rows, in a transaction holding ``lock_name``; [] while another worker
    holds it (it is sweeping the same rows right now)."""
    async with db.transaction() as conn:
        if not await conn.fetchval(TAKE_LOCK, lock_name):
            return []
        return await conn.fetch(sql, *args)


async def sweep_lost_work(stuck_after_s: float | None = None) -> int:
    """Both sweeps; returns how many jobs are sent again. ``stuck_after_s`` defaults to
    ``BATON_DELIVERY_SWEEP_AFTER_S``: longer than any sending actor's retry backoff (300 s
    at most), so work still on its way is left alone."""
    if stuck_after_s is None:
        stuck_after_s = get_settings().delivery_sweep_after_s
    return await sweep_undone_jobs(stuck_after_s) + await sweep_stuck_deliveries(stuck_after_s)


async def sweep_undone_jobs(stuck_after_s: float) -> int:
    from actors.outbox import JOB_DELAYS_S  # the relay imports this module

    settings = get_settings()
    delays = {name: delay(settings) for name, delay in JOB_DELAYS_S.items()}
    rows = await _fetch_alone(
        SWEEP_LOCK + ":jobs",
        RESEND_UNDONE_JOBS,
        stuck_after_s,
        SWEEP_WINDOW_S,
        JOB_SENDS_MAX,
        list(delays),
        list(delays.values()),
        ANNOUNCE_EVENTS,
    )
    for row in rows:
        log.warning(
            "job %s of hand-off %s sent but never done (a lost message?): sending it again",
            row["actor_name"],
            row["handoff_id"],
        )
    return len(rows)


async def sweep_stuck_deliveries(stuck_after_s: float) -> int:
    """Write the jobs again for rows untouched ``stuck_after_s``; returns how many jobs."""
    rows = await _fetch_alone(
        SWEEP_LOCK,
        RESEND_STUCK,
        stuck_after_s,
        SWEEP_WINDOW_S,
        list(JOB_OF_CHANNEL),
        list(JOB_OF_CHANNEL.values()),
    )
    for row in rows:
        log.warning(
            "deliveries of hand-off %s left unsent (a lost message?): %s written again",
            row["handoff_id"],
            row["actor_name"],
        )
    return len(rows)
