"""The deliveries sweep: rows whose send was lost on the way are sent after all.

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

from actors import db
from settings import get_settings

log = logging.getLogger("baton.deliveries")

SWEEP_INTERVAL_MAX_S = 600.0
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


def sweep_interval_s() -> float:
    return min(SWEEP_INTERVAL_MAX_S, get_settings().delivery_sweep_after_s / 2)


async def sweep_stuck_deliveries(stuck_after_s: float | None = None) -> int:
    """Write the jobs again for rows untouched ``stuck_after_s`` (by default
    ``BATON_DELIVERY_SWEEP_AFTER_S``: longer than any sending actor's retry backoff, 300 s
    at most, so a row still on its way is left alone); returns how many jobs. Nothing
    when another worker is sweeping right now."""
    if stuck_after_s is None:
        stuck_after_s = get_settings().delivery_sweep_after_s
    async with db.transaction() as conn:
        if not await conn.fetchval(TAKE_LOCK, SWEEP_LOCK):
            return 0
        rows = await conn.fetch(
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
