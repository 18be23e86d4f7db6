"""What the current request or background message is about, for every log line it writes.

Context variables, so the requests sharing one event loop each keep their own. They are
bound at the edges (the web's request middleware and auth, the worker's message
middleware) and read by the JSON log formatter (``server/logs.py``). A top-level module
that imports nothing of ours: every room may bind them, none has to know who reads them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

FIELDS = ("request_id", "account_id", "handoff_id", "message_id", "actor")

_VARS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"baton_log_{name}", default=None) for name in FIELDS
}

Tokens = list[tuple[str, contextvars.Token[str | None]]]


def bind(**values: object) -> Tokens:
    """Set fields (None values are skipped) for the rest of this task; ``reset`` undoes it."""
    tokens: Tokens = []
    for name, value in values.items():
        if value is None:
            continue
        tokens.append((name, _VARS[name].set(str(value))))
    return tokens


def reset(tokens: Tokens) -> None:
    for name, token in reversed(tokens):
        _VARS[name].reset(token)


@contextmanager
def bound(**values: object) -> Iterator[None]:
    tokens = bind(**values)
    try:
        yield
    finally:
        reset(tokens)


def snapshot() -> dict[str, str | None]:
    return {name: var.get() for name, var in _VARS.items()}


def restore(saved: dict[str, str | None]) -> None:
    """Put every field back as ``snapshot()`` found it (whatever was bound since)."""
    for name, value in saved.items():
        _VARS[name].set(value)


def clear() -> None:
    """Unset every field (a worker thread between two messages)."""
    for var in _VARS.values():
        var.set(None)


def current() -> dict[str, str]:
    """The fields that are set, for a log line."""
    found = {}
    for name, var in _VARS.items():
        value = var.get()
        if value is not None:
            found[name] = value
    return found
