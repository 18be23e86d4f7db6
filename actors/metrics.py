"""Worker metrics: what each delivery attempt came to, per channel.

``baton_delivery_attempts_total{channel, outcome}`` counts every send that claimed its
row (``actors.deliveries.deliver``): ``sent``, ``retry`` (failed for now) or ``failed``
(given up). In a worker pool started with ``BATON_WORKER_METRICS_PORT`` these live in
prometheus_client's multiprocess files, which Dramatiq's own Prometheus middleware
exposes on that port beside its ``dramatiq_*`` message metrics (``cli/worker_metrics.py``
sets that up before anything imports prometheus_client). In a web process (an inline
PSA push) they land in the default registry that ``GET /metrics`` serves.
"""

from __future__ import annotations

from prometheus_client import Counter

DELIVERY_ATTEMPTS = Counter(
    "baton_delivery_attempts",
    "Delivery attempts that reached a send, by channel and outcome.",
    ["channel", "outcome"],
)


def count_delivery(channel: str, outcome: str) -> None:
    DELIVERY_ATTEMPTS.labels(channel or "unknown", outcome).inc()


# Escalation policies (actors/tiers/): each tier that went out, and each SLA breach, by
# the hand-off's priority at that moment.
TIERS_FIRED = Counter("baton_tiers_fired", "Escalation-policy tiers fired, by priority.", ["priority"])
SLA_BREACHES = Counter(
    "baton_sla_breaches", "Escalations not claimed by their SLA's due time, by priority.", ["priority"]
)
