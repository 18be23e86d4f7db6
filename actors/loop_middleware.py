"""A loop that runs beside the actors on each worker process's asyncio loop.

The outbox relay and the tier engine are both such loops: started once the worker has
booted (after the Piccolo pool opens: add the middleware ``before=PiccoloPool``, since
Dramatiq runs ``after_worker_boot`` hooks last-first) and stopped, awaited, before the
worker shuts down (first-first: before the pool closes).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

log = logging.getLogger("baton.worker")


class BackgroundLoop(Middleware):
    """Runs ``forever(stop)`` on the worker's asyncio loop until ``stop`` is set."""

    def __init__(self, name: str, forever: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.name = name
        self._forever = forever
        self._stop: asyncio.Event | None = None
        self._task: Any = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError(f"the {self.name} needs the AsyncIO middleware")

        async def start() -> None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(self._forever(self._stop))

        loop_thread.run_coroutine(start())
        log.info("worker pid %s: %s started", os.getpid(), self.name)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None or self._stop is None:
            return
        stop, task = self._stop, self._task

        async def halt() -> None:
            stop.set()
            await task

        loop_thread.run_coroutine(halt())
