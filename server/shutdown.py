"""The web process's shutdown has a deadline: past it, every task still running is logged.

A replica that cannot stop holds up a rolling deploy until its orchestrator kills it, and
the kill says nothing about why. Each step of our shutdown is bounded on its own (the
hub's ``stop``, the pool's close); this is the net under them: when the whole shutdown
outlasts ``SHUTDOWN_DEADLINE_S``, one ERROR names each task still running and the await
chain it is stuck in, innermost last. If the event loop itself is blocked (no task can
be listed), the loop thread's stack is logged instead.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import logging
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar

log = logging.getLogger("baton.server")

SHUTDOWN_DEADLINE_S = 8.0
"""uvicorn gives requests in flight up to 10 s, then runs the lifespan's shutdown; compose
kills the replica 20 s after its SIGTERM (compose.yaml), so the dump comes before that."""
LOOP_ANSWER_TIMEOUT_S = 1.0
"""How long the watchdog waits for the loop to list its tasks before calling it blocked."""

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where a task is, outermost call first, down to the future it waits for.

    ``Task.print_stack`` shows only the outermost frame of a suspended task, which says
    nothing about the step that waits; this follows ``cr_await`` down instead.
    """
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        if type(awaited).__name__ in ("async_generator_asend", "async_generator_athrow"):
            # A lifespan step is an async generator; its step object names no generator,
            # but refers to it.
            awaited = next((g for g in gc.get_referents(awaited) if hasattr(g, "ag_frame")), awaited)
        frame = (
            getattr(awaited, "cr_frame", None)
            or getattr(awaited, "ag_frame", None)
            or getattr(awaited, "gi_frame", None)
        )
        if frame is None:
            lines.append(f"    awaiting {awaited!r}")
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        source = linecache.getline(code.co_filename, frame.f_lineno).strip()
        if source:
            lines.append(f"    {source}")
        awaited = (
            getattr(awaited, "cr_await", None)
            or getattr(awaited, "ag_await", None)
            or getattr(awaited, "gi_yieldfrom", None)
        )
    return lines


def running_tasks_report(loop: asyncio.AbstractEventLoop) -> str:
    """Every unfinished task of ``loop``, with its await chain (call on the loop)."""
    tasks = sorted((t for t in asyncio.all_tasks(loop) if not t.done()), key=lambda t: t.get_name())
    parts = [f"{len(tasks)} task(s) still running:"]
    for task in tasks:
        state = "cancelling" if task.cancelling() else "pending"
        parts.append(f"task {task.get_name()!r} ({state}):")
        parts.extend(await_chain(task))
    return "\n".join(parts)


class ShutdownWatchdog:
    """Armed when shutdown begins, disarmed when it ends; logs the dump if it fires first.

    A thread, not a ``call_later``: a loop blocked in a synchronous call would never run
    a timer, and that hang is the one most in need of a stack.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline_s: float) -> None:
        self._loop = loop
        self._deadline_s = deadline_s
        self._loop_thread_id = threading.get_ident()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True)

    def arm(self) -> ShutdownWatchdog:
        self._thread.start()
        return self

    def disarm(self) -> None:
        self._finished.set()

    def _watch(self) -> None:
        if self._finished.wait(self._deadline_s):
            return
        answered = threading.Event()

        def dump() -> None:
            try:
                if not self._finished.is_set():
                    log.error(
                        "shutdown still running after %.0f s; %s",
                        self._deadline_s,
                        running_tasks_report(self._loop),
                    )
            finally:
                answered.set()

        try:
            self._loop.call_soon_threadsafe(dump)
        except RuntimeError:  # the loop closed meanwhile: shutdown did end
            return
        if answered.wait(LOOP_ANSWER_TIMEOUT_S) or self._finished.is_set():
            return
        frame = sys._current_frames().get(self._loop_thread_id)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(gone)\n"
        log.error(
            "shutdown still running after %.0f s and the event loop is blocked; its thread is at:\n%s",
            self._deadline_s,
            stack.rstrip("\n"),
        )


def with_shutdown_deadline(*managers: Lifespan, deadline_s: float = SHUTDOWN_DEADLINE_S) -> Lifespan:
    """One lifespan made of ``managers`` (entered in order, left in reverse), whose
    shutdown is watched by a ``ShutdownWatchdog`` of ``deadline_s``."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        watchdog: ShutdownWatchdog | None = None
        try:
            async with AsyncExitStack() as stack:
                for manager in managers:
                    await stack.enter_async_context(manager(app))
                try:
                    yield
                finally:
                    watchdog = ShutdownWatchdog(asyncio.get_running_loop(), deadline_s).arm()
        finally:
            if watchdog is not None:
                watchdog.disarm()

    return lifespan
