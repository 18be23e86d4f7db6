"""Keeps ``baton dev``'s children alive: a child that dies is logged and restarted."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from cli.processes import die_with_parent

log = logging.getLogger("baton.dev")

RESTART_BACKOFF_MIN_S = 0.5
RESTART_BACKOFF_MAX_S = 10.0
# A child that stayed up this long is healthy again: its next death restarts fast.
HEALTHY_AFTER_S = 30.0
POLL_INTERVAL_S = 0.2
STOP_GRACE_S = 20.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = RESTART_BACKOFF_MIN_S
    restart_at: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    # What the kernel sends it when baton dev dies (see _spawn).
    death_signal: signal.Signals = signal.SIGTERM

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a child's process group (each child leads its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = threading.Event()
        # Set by a signal handler: a plain flag, no lock. Event.set() there deadlocked
        # when the signal arrived while the main thread held the Event's own lock
        # (inside stopping.wait), and Ctrl-C then hung baton dev for good.
        self.stop_requested = False

    def request_stop(self) -> None:
        """Safe to call from a signal handler."""
        self.stop_requested = True

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            env={**os.environ, **child.env},
            # Own session: a terminal's Ctrl-C reaches only us, and we stop the
            # children in order. die_with_parent: a SIGKILLed `baton dev` takes
            # its children with it instead of leaving them on their ports.
            start_new_session=True,
            preexec_fn=die_with_parent(child.death_signal),
        )
        child.started_at = time.monotonic()
        child.restart_at = None

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)
            log.info("started %s (pid %s)", child.name, child.pid)

    def poll_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at and not (self.stopping.is_set() or self.stop_requested):
                    self._spawn(child)
                    child.restarts += 1
                    log.warning("restarted %s (pid %s, restart #%s)", child.name, child.pid, child.restarts)
                continue
            if child.process is None or child.process.poll() is None:
                continue
            code = child.process.returncode
            _kill_group(child.process.pid)  # a crashed pool's orphaned Dramatiq processes
            if now - child.started_at >= HEALTHY_AFTER_S:
                child.backoff_s = RESTART_BACKOFF_MIN_S
            how = f"signal {-code}" if code < 0 else f"code {code}"
            log.error(
                "%s (pid %s) exited with %s; restarting in %.1f s",
                child.name,
                child.pid,
                how,
                child.backoff_s,
            )
            child.restart_at = now + child.backoff_s
            child.backoff_s = min(child.backoff_s * 2, RESTART_BACKOFF_MAX_S)

    def run_until_stopped(self) -> None:
        while not self.stop_requested:
            time.sleep(POLL_INTERVAL_S)
            self.poll_once()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM every child, wait up to ``grace_s`` for all, then SIGKILL stragglers."""
        self.stopping.set()
        live = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in live:
            assert child.process is not None
            child.process.terminate()
        deadline = time.monotonic() + grace_s
        for child in live:
            assert child.process is not None
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", child.name, grace_s)
                child.process.kill()
                child.process.wait()
            # Its whole group, stragglers included: a worker pool's Dramatiq processes are
            # its children, not ours, and outlive a parent killed before it stopped them.
            _kill_group(child.process.pid)
        log.info("stopped %s", ", ".join(c.name for c in self.children) or "nothing")
