"""Bulkheads: a slow outside service may hold only a share of a worker's threads.

An async actor still holds one Dramatiq worker thread while it awaits. An AI answering in
20 s, or a PSA that hangs until the timeout, would otherwise take every thread of the
process and leave the e-mails and chat messages queued behind it. So the AI and PSA
actors first take a slot of their kind (``SHARE_OF_THREADS`` of the worker's threads);
when none is free they send themselves again a little later (a new message, not a retry)
and give the thread back at once.

Process memory only: the counters live on the worker's asyncio loop, where every async
actor of the process runs. Dramatiq isolates queues only by process (``--queues``), which
would take separate pools to do this; why these stay: docs/architecture.md, "Bulkheads".
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

log = logging.getLogger("baton.actors")

AI = "ai"
PSA = "psa"
SHARE_OF_THREADS = {AI: 0.25, PSA: 0.25}
DEFAULT_WORKER_THREADS = 8
POSTPONE_MIN_MS = 1_000
POSTPONE_MAX_MS = 5_000
# Dramatiq runs lower numbers first: the quick channels go before a waiting AI or PSA job.
SLOW_ACTOR_PRIORITY = 10


class Slots:
    def __init__(self, worker_threads: int = DEFAULT_WORKER_THREADS) -> None:
        self.limits: dict[str, int] = {}
        self.used: dict[str, int] = dict.fromkeys(SHARE_OF_THREADS, 0)
        self.size_for(worker_threads)

    def size_for(self, worker_threads: int) -> None:
        self.limits = {name: max(1, int(worker_threads * share)) for name, share in SHARE_OF_THREADS.items()}

    def try_take(self, name: str) -> bool:
        if self.used[name] >= self.limits[name]:
            return False
        self.used[name] += 1
        return True

    def give_back(self, name: str) -> None:
        self.used[name] = max(0, self.used[name] - 1)


slots = Slots()


class SlotSizer(Middleware):
    """Sizes the slots from the worker's thread count when it boots."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        slots.size_for(worker.worker_threads)
        log.info("slow-service slots: %s of %d threads", slots.limits, worker.worker_threads)


async def in_slot(
    name: str, actor: dramatiq.Actor[Any, Any], kwargs: dict[str, Any], work: Callable[[], Awaitable[object]]
) -> bool:
    """Run ``work`` in a slot of ``name``, or send ``actor(**kwargs)`` again shortly; True if it ran."""
    if not slots.try_take(name):
        delay_ms = random.randint(POSTPONE_MIN_MS, POSTPONE_MAX_MS)
        await asyncio.to_thread(actor.send_with_options, kwargs=kwargs, delay=delay_ms)
        return False
    try:
        await work()
    finally:
        slots.give_back(name)
    return True


def _install() -> None:
    from actors.broker import broker

    broker.add_middleware(SlotSizer())


_install()
