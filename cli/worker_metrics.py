"""Point Dramatiq's Prometheus middleware at ``BATON_WORKER_METRICS_PORT``.

Dramatiq's middleware (``dramatiq.middleware.prometheus``) reads its port, bind address
and multiprocess folder from ``dramatiq_prom_*`` variables when first imported, and
prometheus_client picks its multiprocess mode from ``PROMETHEUS_MULTIPROC_DIR`` when
first imported. So ``baton worker`` sets all of them before anything imports either; the
worker processes it forks inherit them, and ``actors.broker`` adds the middleware when
``dramatiq_prom_port`` is set. The folder is new for every pool (old files would add a
previous run's counts) and removed when the pool exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

from settings import Settings

PORT_ENV = "dramatiq_prom_port"
HOST_ENV = "dramatiq_prom_host"
DB_ENV = "dramatiq_prom_db"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def export_worker_metrics_env(settings: Settings) -> str | None:
    """Set the variables for a pool exporting on ``settings.worker_metrics_port``; the
    folder of its metric files, or None when the port is 0 (no metrics)."""
    if not settings.worker_metrics_port:
        os.environ.pop(PORT_ENV, None)
        return None
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the worker metrics were set up")
    folder = tempfile.mkdtemp(prefix="baton-worker-metrics-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ[PORT_ENV] = str(settings.worker_metrics_port)
    os.environ.setdefault(HOST_ENV, "0.0.0.0")
    os.environ[DB_ENV] = folder
    os.environ[MULTIPROC_ENV] = folder
    return folder
