"""The embedded Postgres starts from a checkout inside a private (0700) folder, as root.

As root, Postgres runs as the ``pgserver`` system user, who must reach both the cluster
and pgserver's binaries in the checkout's venv. A clone under ``/root`` or ``mktemp -d``
sits in a 0700 folder: the test session's cluster lives elsewhere (a temporary folder),
so nothing made the binaries' parents passable and initdb failed on every test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cli import embedded_postgres
from cli.embedded_postgres import EmbeddedPostgres
from cli.processes import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root hands Postgres to another user")


def test_postgres_starts_from_binaries_and_data_inside_private_folders(postgres_home: Path) -> None:
    checkout = postgres_home / "private-clone"  # e.g. /root/baton
    site_packages = checkout / ".venv" / "site-packages"
    installed = Path(embedded_postgres._bin_dir()).parent.parent  # site-packages/pgserver
    # The package and the shared libraries its binaries find by rpath ($ORIGIN/../../../pgserver.libs).
    for name in ("pgserver", "pgserver.libs"):
        shutil.copytree(installed.parent / name, site_packages / name, symlinks=True)
    venv_install = site_packages / "pgserver" / "pginstall"
    checkout.chmod(0o700)
    data = postgres_home / "private-data"  # e.g. mktemp -d
    data.mkdir(mode=0o700)

    server = EmbeddedPostgres(data / "postgres", free_port(), durable=False, bin_dir=venv_install / "bin")
    try:
        server.start()
        answer = subprocess.run(
            [str(venv_install / "bin" / "psql"), server.url, "-tAc", "SELECT 1"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert answer.stdout.strip() == "1"
    finally:
        server.stop()
    # Passable, never listable, by others.
    assert oct(checkout.stat().st_mode & 0o777) == "0o701"
