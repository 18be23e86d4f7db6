"""Escalation policies and SLA (SPEC second edition).

- ``escalation_policies``: one per (account, team); the account's default has no team,
  so the uniqueness is an index on ``COALESCE(team_id, nil uuid)``.
- ``session_handoffs`` gains the policy copied at create and at each release, the
  release count, the tier engine's schedule (``tier_next``, ``tier_round``,
  ``tier_due_at``, ``last_tier``) and the SLA (``claim_due_at``, ``breached_at``), with
  two partial indexes for the engine's due scans, open hand-offs only.
- ``deliveries``' uniqueness widens from (handoff, channel, recipient) to the ledger key
  hand-off x purpose x release count x tier x round x channel x recipient; existing rows
  take purpose ``notify``, release 0, tier 0, round 1, so none of them changes meaning.

The SQL is frozen on purpose.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "escalation policies, the tier schedule and SLA, the widened deliveries ledger key"

FORWARDS = (
    """
CREATE TABLE IF NOT EXISTS escalation_policies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    team_id uuid NULL REFERENCES teams (id) ON DELETE CASCADE,
    name varchar(200) NOT NULL DEFAULT '',
    tiers jsonb NOT NULL DEFAULT '[]',
    repeat integer NOT NULL DEFAULT 0,
    sla_claim_s jsonb NULL,
    business_hours jsonb NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)
""",
    """
CREATE UNIQUE INDEX IF NOT EXISTS escalation_policies_one_per_team
ON escalation_policies (account_id, COALESCE(team_id, '00000000-0000-0000-0000-000000000000'::uuid))
""",
    """
ALTER TABLE session_handoffs
    ADD COLUMN IF NOT EXISTS policy jsonb NULL,
    ADD COLUMN IF NOT EXISTS policy_id uuid NULL,
    ADD COLUMN IF NOT EXISTS release_count integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS tier_next integer NULL,
    ADD COLUMN IF NOT EXISTS tier_round integer NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS tier_due_at timestamptz NULL,
    ADD COLUMN IF NOT EXISTS last_tier jsonb NULL,
    ADD COLUMN IF NOT EXISTS claim_due_at timestamptz NULL,
    ADD COLUMN IF NOT EXISTS breached_at timestamptz NULL
""",
    """
CREATE INDEX IF NOT EXISTS session_handoffs_tier_due
ON session_handoffs (tier_due_at) WHERE state = 'open' AND tier_due_at IS NOT NULL
""",
    """
CREATE INDEX IF NOT EXISTS session_handoffs_claim_due
ON session_handoffs (claim_due_at) WHERE state = 'open' AND breached_at IS NULL AND claim_due_at IS NOT NULL
""",
    """
ALTER TABLE deliveries
    ADD COLUMN IF NOT EXISTS purpose varchar(16) NOT NULL DEFAULT 'notify',
    ADD COLUMN IF NOT EXISTS release_count integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS tier integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS round integer NOT NULL DEFAULT 1,
    DROP CONSTRAINT IF EXISTS deliveries_handoff_channel_recipient_key,
    ADD CONSTRAINT deliveries_ledger_key
        UNIQUE (handoff_id, purpose, release_count, tier, round, channel, recipient)
""",
)

BACKWARDS = (
    """
ALTER TABLE deliveries
    DROP CONSTRAINT IF EXISTS deliveries_ledger_key,
    DROP COLUMN IF EXISTS round,
    DROP COLUMN IF EXISTS tier,
    DROP COLUMN IF EXISTS release_count,
    DROP COLUMN IF EXISTS purpose,
    ADD CONSTRAINT deliveries_handoff_channel_recipient_key UNIQUE (handoff_id, channel, recipient)
""",
    "DROP INDEX IF EXISTS session_handoffs_claim_due",
    "DROP INDEX IF EXISTS session_handoffs_tier_due",
    """
ALTER TABLE session_handoffs
    DROP COLUMN IF EXISTS breached_at,
    DROP COLUMN IF EXISTS claim_due_at,
    DROP COLUMN IF EXISTS last_tier,
    DROP COLUMN IF EXISTS tier_due_at,
    DROP COLUMN IF EXISTS tier_round,
    DROP COLUMN IF EXISTS tier_next,
    DROP COLUMN IF EXISTS release_count,
    DROP COLUMN IF EXISTS policy_id,
    DROP COLUMN IF EXISTS policy
""",
    "DROP TABLE IF EXISTS escalation_policies",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tables", description=DESCRIPTION)

    async def run(statements: tuple[str, ...]) -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in statements:  # one per call: asyncpg prepares one statement
            await engine.run_ddl(statement)

    async def add_policies():
        await run(FORWARDS)

    async def drop_policies():
        await run(BACKWARDS)

    manager.add_raw(add_policies)
    manager.add_raw_backwards(drop_policies)
    return manager
