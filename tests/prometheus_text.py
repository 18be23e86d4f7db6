"""Reading Prometheus text exposition in tests."""

from __future__ import annotations

import re


def samples(text: str, name: str) -> dict[str, float]:
    """{label set: value} of one metric in Prometheus text."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"{re.escape(name)}(\{{.*\}})? (\S+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found
