"""Inbox fan-out: publish → websocket latency across two replicas, and memory per socket.

    uv run python bench/fanout.py [--clients-per-replica 500] [--events 2000] [--rate 25]

Starts its own embedded Postgres and Redis, two `baton serve` processes, and connects
``clients-per-replica`` websocket clients to each: by default lean ones
(bench/lean_ws.py, a hand-parsed RFC 6455 reader), because on 2 cores the clients share
the CPU with the servers, and aiohttp's per-frame cost (``--client aiohttp``) made the
clients' own backlog the larger part of the latency measured. Then:

1. **Baseline**: raw Redis PUBLISH → a redis-py pub/sub subscriber, same pace and count.
2. **Baton**: ``inbox.publish`` (stream + pub/sub, as the web and workers do) → every
   connected client, through each replica's hub and its websockets.

Latency is the receive time minus the publish time carried in the event, over every
frame every client receives. Memory is the servers' RSS growth from no sockets to all
sockets connected and idle, divided by the sockets. Results: bench/results/fanout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio

from bench.background_stack import percentiles
from bench.lean_ws import LeanClients
from cli.embedded_postgres import EmbeddedPostgres
from cli.embedded_redis import EmbeddedRedis
from cli.processes import free_port, wait_until
from inbox import HandoffCreated, publish
from server.tokens import mint_user_token

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fanout.json"
SECRET = "bench-secret-" + "x" * 32
IDLE_SETTLE_S = 3.0
CLIENT_KINDS = {
    "lean": "bench/lean_ws.py: one asyncio.Protocol per socket, frames parsed by hand",
    "aiohttp": "aiohttp ClientSession.ws_connect, one reader task and a JSON parse per frame",
}
DRAIN_TIMEOUT_S = 60.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def paced(count: int, rate_per_s: float, action: Any) -> None:
    """Call ``action(i)`` ``count`` times at ``rate_per_s``, on a fixed schedule."""
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate_per_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await action(i)


async def baseline(redis_url: str, events: int, rate: float) -> dict[str, float]:
    """Raw Redis: PUBLISH a timestamp, a pub/sub subscriber notes the delay."""
    client = redis.asyncio.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe("bench:raw")
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    samples: list[float] = []

    async def listen() -> None:
        while len(samples) < events:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                samples.append((time.time_ns() - int(message["data"])) / 1e6)

    listener = asyncio.create_task(listen())

    async def send(i: int) -> None:
        await client.publish("bench:raw", str(time.time_ns()))

    await paced(events, rate, send)
    await asyncio.wait_for(listener, DRAIN_TIMEOUT_S)
    await pubsub.aclose()
    await client.aclose()
    return percentiles(samples)


async def seed_user(database_url: str) -> tuple[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        account_id, user_id = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'Bench MSP')", account_id)
        await conn.execute(
            "INSERT INTO users (id, account_id, email, name, account_role) "
            "VALUES ($1, $2, 'dana@bench.example', 'Dana', 'engineer')",
            user_id,
            account_id,
        )
    finally:
        await conn.close()
    return str(account_id), mint_user_token(SECRET, user_id)


class Clients:
    """Many websocket clients in one process; every frame's delay goes to ``samples``."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        # limit=0: a websocket holds its connection, and the default pool stops at 100.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def connect(self, url: str, token: str) -> None:
        socket = await self.session.ws_connect(
            url, headers={"Authorization": f"Bearer {token}"}, autoping=True, compress=0
        )
        hello = await socket.receive_json(timeout=30)
        assert hello["type"] == "hello", hello
        self.sockets.append(socket)

    def start_reading(self) -> None:
        self.readers = [asyncio.create_task(self._read(socket)) for socket in self.sockets]

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type is aiohttp.WSMsgType.TEXT:
                sent_ns = int(json.loads(message.data)["problem_summary"])
                self.samples.append((time.time_ns() - sent_ns) / 1e6)

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)
        await self.session.close()


def start_server(
    port: int, env: dict[str, str], log_dir: Path, profile_to: Path | None = None
) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"serve-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
    profiler = ["-m", "cProfile", "-o", f"{profile_to}.{port}"] if profile_to else []
    return subprocess.Popen(
        [sys.executable, *profiler, "-m", "cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env, "BATON_LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="baton-bench-fanout-"))
    postgres = EmbeddedPostgres(work / "postgres", free_port(), durable=False)
    redis_server = EmbeddedRedis(work / "redis", free_port(), durable=False)
    servers: list[subprocess.Popen[bytes]] = []
    clients: Clients | LeanClients = LeanClients() if args.client == "lean" else Clients()
    try:
        postgres.start()
        redis_server.start()
        env = {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "BATON_JWT_SECRET": SECRET,
            "BATON_DATA_DIR": str(work),
            # One user opens every socket here; the per-user connect limit would refuse it.
            "BATON_RATE_LIMIT_INBOX_CONNECTS_PER_MINUTE": "100000000",
        }
        subprocess.run(
            [sys.executable, "-m", "cli", "migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        account_id, token = await seed_user(postgres.url)

        print(
            f"baseline: raw Redis PUBLISH → subscriber, {args.events} messages at {args.rate}/s …", flush=True
        )
        raw = await baseline(redis_server.url, args.events, args.rate)
        print(f"  p50 {raw['p50_ms']} ms, p99 {raw['p99_ms']} ms", flush=True)

        ports = [free_port(), free_port()]
        profile_to = args.profile.resolve() if args.profile else None
        servers = [start_server(port, env, work, profile_to) for port in ports]
        for port in ports:
            if not wait_until(functools.partial(_ready, port), 30):
                raise RuntimeError(f"baton serve on {port} did not start; see {work}")
        rss_before = [rss_kib(server.pid) for server in servers]

        print(f"connecting {args.clients_per_replica} clients to each of 2 replicas …", flush=True)
        for port in ports:
            url = f"ws://127.0.0.1:{port}/api/v1/inbox"
            for start in range(0, args.clients_per_replica, 50):
                batch = min(50, args.clients_per_replica - start)
                if isinstance(clients, LeanClients):
                    connects = [
                        clients.connect("127.0.0.1", port, "/api/v1/inbox", token) for _ in range(batch)
                    ]
                else:
                    connects = [clients.connect(url, token) for _ in range(batch)]
                await asyncio.gather(*connects)
        await asyncio.sleep(IDLE_SETTLE_S)  # let allocations settle before reading RSS
        rss_after = [rss_kib(server.pid) for server in servers]
        per_socket_kib = [
            (after - before) / args.clients_per_replica
            for before, after in zip(rss_before, rss_after, strict=True)
        ]
        print(f"  RSS per idle socket: {', '.join(f'{k:.1f}' for k in per_socket_kib)} KiB", flush=True)

        clients.start_reading()
        publisher = redis.asyncio.Redis.from_url(redis_server.url)
        expected = args.events * len(clients.sockets)
        print(f"publishing {args.events} events at {args.rate}/s → {expected} frames …", flush=True)

        async def send(i: int) -> None:
            event = HandoffCreated(
                handoff_id=str(uuid.UUID(int=i)),
                session_id=str(uuid.UUID(int=i)),
                intent="escalate",
                priority="high",
                engineer_notes="printer on fire",
                problem_summary=str(time.time_ns()),
                created_at="2026-11-25T12:00:00+00:00",
            )
            await publish(publisher, account_id, event)

        await paced(args.events, args.rate, send)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while len(clients.samples) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await publisher.aclose()
        hub = percentiles(clients.samples)
        hub["lost_frames"] = expected - len(clients.samples)
        print(f"  p50 {hub['p50_ms']} ms, p99 {hub['p99_ms']} ms, max {hub['max_ms']} ms", flush=True)
        return {
            "benchmark": "fanout",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count()},
            "replicas": 2,
            "clients_per_replica": args.clients_per_replica,
            "events": args.events,
            "rate_per_s": args.rate,
            "client": CLIENT_KINDS[args.client],
            "raw_redis_publish_to_subscriber": raw,
            "baton_publish_to_websocket": hub,
            "ratio_p50_to_raw": round(hub["p50_ms"] / raw["p50_ms"], 2),
            "ratio_p99_to_raw": round(hub["p99_ms"] / raw["p99_ms"], 2),
            "rss_per_idle_socket_kib": [round(k, 1) for k in per_socket_kib],
            "targets": {"p50_ms": 5, "p99_ms": 25, "rss_per_idle_socket_kib": 40},
        }
    finally:
        await clients.close()
        for server in servers:
            # uvicorn re-raises the signal it stopped on: SIGINT lets cProfile write.
            server.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        for server in servers:
            server.wait(15)
        redis_server.stop()
        postgres.stop()


def _ready(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients-per-replica", type=int, default=500)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=25.0, help="events published per second")
    parser.add_argument(
        "--client",
        choices=sorted(CLIENT_KINDS),
        default="lean",
        help="the websocket clients: lean (bench/lean_ws.py, the default) or aiohttp",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="STATS",
        help="run each server under cProfile, stats to STATS.<port> (figures then not for the record)",
    )
    import uvloop

    result = uvloop.run(run(parser.parse_args()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
