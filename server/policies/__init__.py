"""Escalation policies over the API: validated, one per (account, team), written whole by
``PUT`` (SPEC second edition, "Escalation policies and SLA"). The tier engine that follows
them lives with the workers; this package only keeps them."""
