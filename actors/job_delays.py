"""Jobs that run some time after their outbox row was written.

The relay sends such a job to arrive that long after the row's creation, however late
the relay is (actors/outbox.py); the sweep leaves it alone until it is overdue by as
long (actors/delivery_sweep.py). Both read it here, below them.
"""

from __future__ import annotations

from collections.abc import Callable

from settings import Settings

# Seconds after the row's creation at which the job should run.
JOB_DELAYS_S: dict[str, Callable[[Settings], float]] = {
    "remind_handoff": lambda settings: float(settings.remind_after_s),
}


def job_delays_s(settings: Settings) -> dict[str, float]:
    """Each delayed job's delay under ``settings``."""
    return {name: delay(settings) for name, delay in JOB_DELAYS_S.items()}
