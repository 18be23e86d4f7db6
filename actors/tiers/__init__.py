"""The tier engine: escalation policies' tiers and SLA breaches (SPEC second edition).

- ``clock``: the engine's one clock (tests drive it).
- ``recipients``: whom a tier notifies.
- ``engine``: fire the tiers that are due and record the breaches, a batch per
  transaction; the messages go out from the ledger rows it writes.
- ``loop``: each worker process's loop, asleep until the next tier or SLA is due (at
  most a second, for hand-offs created meanwhile).
- ``messages``: the actors: ``fire_due_tiers`` (the create's wake-up for tier 0) and
  ``send_tier_messages`` (one tier's e-mails and chat posts, from its ledger rows).
"""
