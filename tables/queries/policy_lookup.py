"""Which escalation policy a hand-off follows, as a SQL fragment for the click path.

The session team's policy, else the account's default (``team_id`` NULL), else none
(the built-in default): one scalar subquery, so the create and the release read it in
the statement that locks their row, at no extra round trip. It yields the policy as the
JSON of ``tables.policy_shapes.PolicyCopy``.
"""

from __future__ import annotations


def policy_of(account_id: str, team_id: str) -> str:
    """The subquery, over SQL expressions for the account and the team."""
    return f"""(
           SELECT json_build_object(
                      'id', p.id, 'tiers', p.tiers, 'repeat', p.repeat,
                      'sla_claim_s', p.sla_claim_s, 'business_hours', p.business_hours
                  )::text
           FROM escalation_policies AS p
           WHERE p.account_id = {account_id} AND (p.team_id = {team_id} OR p.team_id IS NULL)
           ORDER BY p.team_id NULLS LAST
           LIMIT 1
       )"""
