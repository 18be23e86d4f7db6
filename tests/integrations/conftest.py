"""The in-process API of ``tests.api`` (``client``, ``tenant``), shared here."""

from tests.api.conftest import client, tenant

__all__ = ["client", "tenant"]
