"""A guessable token secret stops the process at once, saying which variable and how to fix
it (SPEC "Tokens"): the probe started ``baton serve`` with ``BATON_JWT_SECRET=x`` and with
the example file's ``change-me-to-64-random-characters``, and anyone could then sign a
token for any user of any account."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cli.processes import free_port
from tests.conftest import REPO_ROOT

# Settings are read before Postgres or Redis is touched: "at once" is the interpreter's start.
EXITS_WITHIN_S = 15.0
EXAMPLE_FILE = REPO_ROOT / "deploy" / "env.example"
HOW_TO_MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _example_secret() -> str:
    for line in EXAMPLE_FILE.read_text().splitlines():
        if line.startswith("BATON_JWT_SECRET="):
            return line.partition("=")[2]
    raise AssertionError("deploy/env.example sets no BATON_JWT_SECRET")


@pytest.mark.parametrize("secret", ["x", "example file's"], ids=["one byte", "example file's placeholder"])
def test_baton_serve_with_a_guessable_secret_exits_at_once_naming_the_variable(secret: str) -> None:
    value = _example_secret() if secret == "example file's" else secret
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli", "serve", "--port", str(free_port())],
            cwd=REPO_ROOT,
            env={**os.environ, "BATON_JWT_SECRET": value},
            capture_output=True,
            text=True,
            timeout=EXITS_WITHIN_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"baton serve with BATON_JWT_SECRET={value!r} was still running after {EXITS_WITHIN_S:.0f} s"
        )

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "BATON_JWT_SECRET" in output and HOW_TO_MAKE_ONE in output
    assert "Traceback" not in output
    assert time.monotonic() - started < EXITS_WITHIN_S


def test_the_example_file_and_compose_tell_operators_how_to_make_a_secret() -> None:
    assert HOW_TO_MAKE_ONE in EXAMPLE_FILE.read_text()
    assert HOW_TO_MAKE_ONE in (REPO_ROOT / "compose.yaml").read_text()
    assert HOW_TO_MAKE_ONE in (REPO_ROOT / "docs" / "operations.md").read_text()
