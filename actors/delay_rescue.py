"""Puts back the delayed messages Dramatiq loses when a worker's Redis connection breaks.

A worker fetches delayed messages (retries with backoff, the reminder, AI and PSA jobs
postponed by ``actors.slots``) from ``<queue>.DQ`` into its ack set and holds them in
memory until they are due. When the consumer's connection breaks (Redis restarting),
Dramatiq 2.2's ``ConsumerThread.run`` empties that memory (``self.delay_queue =
PriorityQueue()``) before it could give them back, and they stay in the ack set of a
worker that is alive and heartbeating, so maintenance never requeues them: they wait,
silently, until that process dies. (Found by the chaos test: assessments that never ran
after a Redis restart.)

``DelayedMessageRescue`` compares, every ``SWEEP_INTERVAL_S``, each delay queue's ack set
with what its consumer still holds; an id missing from memory in two sweeps in a row
(never a message merely moving between the two) is requeued onto its delay queue with
Dramatiq's own ``requeue`` command, eta intact.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

log = logging.getLogger("baton.worker")

SWEEP_INTERVAL_S = 5.0
DELAY_QUEUE_SUFFIX = ".DQ"


def _cached_id(data: bytes) -> str | None:
    try:
        value = dramatiq.Message.decode(data).options.get("redis_message_id")
    except Exception:  # an entry that does not decode is not ours to judge
        return None
    return str(value) if value else None


def held_in_memory(consumer_thread: Any) -> set[str]:
    """The redis message ids a delay-queue consumer thread holds: due later, or fetched
    and not yet looked at."""
    held = {
        str(item.message.options.get("redis_message_id")) for item in list(consumer_thread.delay_queue.queue)
    }
    for data in list(getattr(consumer_thread.consumer, "message_cache", None) or []):
        found = _cached_id(data) if data else None
        if found:
            held.add(found)
    return held


class DelayedMessageRescue(Middleware):
    def __init__(self, sweep_interval_s: float = SWEEP_INTERVAL_S) -> None:
        self.sweep_interval_s = sweep_interval_s
        self._stop = threading.Event()
        self._suspects: dict[str, set[str]] = {}
        self.rescued = 0

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        thread = threading.Thread(
            target=self._run, args=(broker, worker), name="delayed-message-rescue", daemon=True
        )
        thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def _run(self, broker: RedisBroker, worker: dramatiq.Worker) -> None:
        while not self._stop.wait(self.sweep_interval_s):
            try:
                self.sweep(broker, worker)
            except (redis.RedisError, OSError) as exc:
                log.info("delayed-message sweep skipped: Redis unreachable (%s)", type(exc).__name__)
            except Exception:
                log.exception("delayed-message sweep failed")

    def sweep(self, broker: RedisBroker, worker: dramatiq.Worker) -> int:
        """One pass; returns how many messages were put back."""
        rescued = 0
        for queue_name, consumer_thread in list(worker.consumers.items()):
            if not queue_name.endswith(DELAY_QUEUE_SUFFIX) or consumer_thread.consumer is None:
                continue
            acks_key = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
            members = broker.client.smembers(acks_key)
            in_ack_set = {raw.decode() if isinstance(raw, bytes) else str(raw) for raw in members}
            suspects = in_ack_set - held_in_memory(consumer_thread)
            orphans = suspects & self._suspects.get(queue_name, set())
            self._suspects[queue_name] = suspects - orphans
            if orphans:
                broker.do_requeue(queue_name, *sorted(orphans))
                rescued += len(orphans)
                log.warning(
                    "put back %d delayed message(s) on %s that this worker had lost to a broken "
                    "Redis connection",
                    len(orphans),
                    queue_name,
                )
        self.rescued += rescued
        return rescued
