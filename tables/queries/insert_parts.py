"""Inserts of many rows, in parts.

Piccolo's insert sends one parameter per column of each row, and Postgres takes at most
32,767 parameters in one statement: a fan-out to thousands (deliveries, bells, the
sweep's jobs) is written a part at a time, in the caller's transaction when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Our widest insert (a deliveries row with its ledger key) sends 14 parameters a row.
ROWS_PER_INSERT = 1_000


def parts(rows: Sequence[T], size: int = ROWS_PER_INSERT) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
