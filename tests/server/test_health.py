"""/health, /ready, /schema and problem details, against a real `baton serve`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port
from tests.conftest import BatonProcesses, http_status, wait_for


def _get_json(url: str) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["content-type"], json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], json.loads(exc.read())


def test_a_served_baton_is_alive_and_ready(baton: BatonProcesses) -> None:
    server = baton.serve()
    assert _get_json(f"{server.base_url}/health")[0] == 200
    status, _, body = _get_json(f"{server.base_url}/ready")
    assert status == 200
    assert body["checks"] == {"postgres": "ok", "redis": "ok"}


def test_ready_turns_503_naming_redis_when_redis_stops_and_recovers_when_it_returns(
    baton: BatonProcesses, tmp_path: Path
) -> None:
    own_redis = EmbeddedRedis(tmp_path / "redis", free_port(), durable=False)
    own_redis.start()
    try:
        server = baton.serve(env={"REDIS_URL": own_redis.url})
        assert http_status(f"{server.base_url}/ready") == 200

        own_redis.stop()
        status, content_type, body = _get_json(f"{server.base_url}/ready")
        assert status == 503
        assert content_type.startswith("application/problem+json")
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["redis"] != "ok"
        assert "Redis is unreachable" in body["detail"]

        own_redis.start()
        wait_for(lambda: http_status(f"{server.base_url}/ready") == 200, 15, "/ready to recover")
        assert http_status(f"{server.base_url}/health") == 200
    finally:
        own_redis.stop()


def test_an_unknown_path_answers_problem_details(baton: BatonProcesses) -> None:
    server = baton.serve()
    status, content_type, body = _get_json(f"{server.base_url}/api/v1/nothing-here")
    assert status == 404
    assert content_type.startswith("application/problem+json")
    assert body["status"] == 404 and body["title"]


def test_the_openapi_schema_is_titled_baton(baton: BatonProcesses) -> None:
    server = baton.serve()
    status, _, schema = _get_json(f"{server.base_url}/schema/openapi.json")
    assert status == 200
    assert schema["info"]["title"] == "Baton"
    assert "/ready" in schema["paths"]


def test_serve_refuses_to_start_when_postgres_is_unreachable(baton: BatonProcesses) -> None:
    unused_port = free_port()
    process = baton._spawn(
        "serve",
        ["serve", "--port", str(free_port())],
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{unused_port}/baton"},
    )
    assert process.process.wait(30) != 0
    assert "Application startup failed" in process.log() or "ConnectionRefusedError" in process.log()
