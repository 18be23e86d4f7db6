"""The database's clock in builder queries.

Leases, sweeps and reminders compare timestamps written by many processes on many
machines; only Postgres's ``now()`` is the same clock for all of them (a worker's clock
may be seconds off). Piccolo has no expression for ``now()`` or an interval of a
parameter's seconds, so these are raw fragments, each a fresh ``QueryString``.
"""

from __future__ import annotations

from piccolo.querystring import QueryString


def now() -> QueryString:
    """The transaction's ``now()``."""
    return QueryString("now()")


def seconds_ago(seconds: float) -> QueryString:
    """``now()`` minus ``seconds`` (sent as a parameter)."""
    return QueryString("now() - make_interval(secs => {})", float(seconds))
