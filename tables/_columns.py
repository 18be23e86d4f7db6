"""Column factories shared by every table (a fresh instance per table, as Piccolo needs)."""

from collections.abc import Iterable
from datetime import UTC, datetime

from piccolo.columns import Timestamptz
from piccolo.constraints import Check


def utcnow() -> datetime:
    """Timezone-aware now: Timestamptz columns must never receive naive datetimes."""
    return datetime.now(UTC)


def created_at() -> Timestamptz:
    return Timestamptz()  # default now(), set by Postgres when a raw INSERT omits it


def updated_at() -> Timestamptz:
    # auto_update is ORM-only: raw SQL updates must set updated_at themselves.
    return Timestamptz(auto_update=utcnow)


def one_of(column_name: str, values: Iterable[str]) -> Check:
    """A CHECK that ``column_name`` holds one of ``values`` (NULL passes, as in SQL).

    Written as a string because Piccolo 1.38's ``Check(column.is_in([...]))`` renders
    its values as ``<Undefined object>``: a bug in ``Where.querystring_for_constraint``.
    """
    return Check(f'"{column_name}" IN {sql_list(values)}')


def sql_list(values: Iterable[str]) -> str:
    """``('a', 'b')``: string literals as a SQL list, for ``column IN …``."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"
