"""Every raw SQL statement of the codebase is valid against the migrated schema, so a
renamed column fails here, not in production.

The statements are found the way the house hook counts them
(/work/shared/hooks/house_facts.py): an AST walk of ``server``, ``actors``, ``inbox``,
``tables`` and ``cli`` (migrations, tests and bench left out) for string constants that
start with SELECT, INSERT, UPDATE, DELETE or WITH, f-strings included. Each is taken as
Python builds it (an f-string is evaluated in its module's namespace, so module
constants it names are filled in), and so are the statements a module keeps in a dict,
list or tuple (``tables.queries.queue.PAGES``). Then Postgres is asked to ``PREPARE``
each one (parse, name resolution and type checks against the schema, nothing run) and
to ``EXPLAIN (GENERIC_PLAN)`` it with its ``$n`` parameters unbound (Postgres 16).

A statement built from a function's local values cannot be checked here: the test
names it, and it should become a module constant.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

pytestmark = pytest.mark.asyncio

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "actors", "inbox", "tables", "cli")
TOP_LEVEL_MODULES = ("settings.py", "log_context.py", "pickup_links.py", "piccolo_conf.py")
# The hook's rule, word for word: what it counts is what is checked.
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I | re.S)
HOOK_MIN_CHARS = 20


@dataclass(frozen=True)
class Statement:
    where: str  # path:line, or path:NAME for a statement kept in a collection
    sql: str


def _python_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            # __main__ runs the CLI when imported; it holds no SQL.
            if "piccolo_migrations" not in path.parts and path.name != "__main__.py":
                yield path
    for name in TOP_LEVEL_MODULES:
        if (REPO_ROOT / name).exists():
            yield REPO_ROOT / name


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the constants that are docstrings (prose, however they start)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _looks_like_sql(text: object) -> bool:
    return isinstance(text, str) and len(text) > HOOK_MIN_CHARS and bool(SQL_START.match(text))


def _sql_nodes(tree: ast.Module) -> Iterator[ast.expr]:
    """The outermost string expressions holding a constant that starts like SQL."""
    docstrings = _docstrings(tree)
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v for v in node.values if isinstance(v, ast.Constant)]
            inside_fstring.update(id(v) for v in parts)
            if parts and node.values[0] is parts[0] and _looks_like_sql(parts[0].value):
                yield node
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and id(node) not in docstrings
            and id(node) not in inside_fstring
            and _looks_like_sql(node.value)
        ):
            yield node


def collect_statements() -> tuple[list[Statement], list[str]]:
    """(every statement, the places whose statement could not be built)."""
    statements: dict[str, Statement] = {}
    unresolved: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text())
        module = importlib.import_module(_module_name(path))
        rel = path.relative_to(REPO_ROOT)
        for node in _sql_nodes(tree):
            where = f"{rel}:{node.lineno}"
            try:
                sql = eval(compile(ast.Expression(node), str(path), "eval"), vars(module))
            except NameError as exc:
                unresolved.append(f"{where} ({exc})")
                continue
            statements.setdefault(sql, Statement(where, sql))
        for name, value in vars(module).items():
            if isinstance(value, dict):
                value = list(value.values())
            if isinstance(value, list | tuple):
                for index, item in enumerate(value):
                    if _looks_like_sql(item):
                        statements.setdefault(item, Statement(f"{rel}:{name}[{index}]", item))
    return list(statements.values()), unresolved


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def _numbered(sql: str) -> str:
    """A Piccolo ``QueryString`` template (``Table.raw``) marks its values ``{}``: give them
    the ``$n`` numbers Postgres prepares (as Piccolo does when it runs the query)."""
    parts = sql.split("{}")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


async def _problem(conn: asyncpg.Connection, sql: str, generic_plan: bool) -> str | None:
    sql = _numbered(sql)
    try:
        await conn.prepare(sql)
        if generic_plan:
            # The simple query protocol (no arguments): the $n stay unbound placeholders.
            await conn.execute(f"EXPLAIN (GENERIC_PLAN) {sql}")
    except asyncpg.PostgresError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def test_every_raw_statement_prepares_and_explains_against_the_migrated_schema(
    connection: asyncpg.Connection,
) -> None:
    statements, unresolved = collect_statements()
    generic_plan = connection.get_server_version() >= (16,)
    problems: list[str] = []
    for statement in statements:
        problem = await _problem(connection, statement.sql, generic_plan)
        if problem is not None:
            problems.append(f"{statement.where}: {problem}\n{statement.sql.strip()}")

    assert not unresolved, "statements built from local values (make them module constants):\n" + "\n".join(
        unresolved
    )
    assert not problems, "\n\n".join(problems)


async def test_the_walk_finds_the_click_path_statements_and_a_broken_one_fails(
    connection: asyncpg.Connection,
) -> None:
    from tables.queries import handoff_create, handoffs, queue

    found = {statement.sql for statement in collect_statements()[0]}

    assert {handoffs.CLAIM_SQL, handoffs.REOPEN, handoff_create.INSERT_HANDOFF} <= found
    assert set(queue.PAGES.values()) <= found
    renamed = handoffs.WHY_NOT_CLAIMED.replace("h.claimed_at", "h.claimed_when")
    assert "column h.claimed_when does not exist" in (await _problem(connection, renamed, True) or "")
