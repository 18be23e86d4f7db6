"""Prometheus metrics of a web replica: ``GET /metrics`` (with its token; the refusals are
in tests/security/test_http_edge.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
from websockets.asyncio.client import connect

from tests.api.conftest import API, new_tenant
from tests.conftest import BatonProcesses
from tests.prometheus_text import samples

METRICS_TOKEN = "scrape-" + uuid.uuid4().hex


async def test_web_metrics_time_requests_by_route_template_and_show_the_hub(
    baton: BatonProcesses, db: asyncpg.Connection
) -> None:
    server = baton.serve(env={"BATON_METRICS_TOKEN": METRICS_TOKEN})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        acme = await new_tenant(db, http, "Acme MSP")
        senior = await acme.user("engineer")
        ids = [uuid.uuid4() for _ in range(3)]  # three ids, one series
        for handoff_id in ids:
            assert (await http.get(f"{API}/handoffs/{handoff_id}", headers=senior.headers)).status_code == 404
        await http.get("/no/such/path")
        token = senior.headers["Authorization"].removeprefix("Bearer ")
        url = server.base_url.replace("http://", "ws://") + f"{API}/inbox"
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "auth", "token": token}))
            await asyncio.wait_for(socket.recv(), 10)
            answer = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text

    counts = samples(text, "baton_http_request_duration_seconds_count")
    reads = {labels: n for labels, n in counts.items() if "/handoffs/" in labels and 'method="GET"' in labels}
    assert reads == {'{method="GET",route="/api/v1/handoffs/{handoff_id}",status="404"}': 3.0}
    assert not any(str(handoff_id) in labels for handoff_id in ids for labels in counts)
    assert not any("no/such" in labels for labels in counts)  # unmatched paths make no series

    assert samples(text, "baton_inbox_subscribers") == {"": 1.0}
    assert samples(text, "baton_inbox_redis_connected") == {"": 1.0}
    assert "baton_inbox_events_fanned_out_total" in text
    assert "process_resident_memory_bytes" in text
