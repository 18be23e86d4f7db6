"""What the host app writes into Baton: people, teams, chat channels, PSA connections and
the sessions it hands off. Every write is an idempotent ``PUT`` of the whole resource,
scoped to the service token's account.
"""
