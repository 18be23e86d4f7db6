"""Inbox fan-out: publish → websocket latency across two replicas, and memory per socket.

    uv run python bench/fanout.py [--clients-per-replica 500] [--events 2000] [--rate 25]

Starts its own embedded Postgres and Redis and connects ``clients-per-replica`` websocket
clients to each of two replicas. The clients are a load generator in a process of its
own (bench/epoll_ws.py: one epoll loop, frames parsed by hand), because on 2 cores they
share the CPU with the servers they measure: ``--client lean`` (bench/lean_ws.py, one
asyncio.Protocol per socket in this process) and ``--client aiohttp`` (aiohttp's client,
whose per-frame cost made its own backlog the larger part of what it measured) remain.
Then, each with the same count and pace of publishes:

1. **Baseline**: raw Redis PUBLISH → a redis-py pub/sub subscriber.
2. **Floor**: ``inbox.publish`` → two bench/bare_fanout.py replicas → every client. A
   bare replica subscribes and writes each frame to its sockets and does nothing else,
   so this is what the machine, loopback TCP, uvloop and the clients cost by themselves.
3. **Baton**: ``inbox.publish`` (stream + pub/sub, as the web and workers do) → two
   ``baton serve`` replicas → every client, through each hub and its websockets.

Latency is the receive time minus the publish time carried in the event, over every
frame every client receives; each run also reports the CPU the clients and the replicas
spent per event. Memory is the servers' RSS growth from no sockets to all sockets
connected and idle, divided by the sockets. Results: bench/results/fanout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio

from bench.background_stack import cpu_s, percentiles
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
    "epoll": "bench/epoll_ws.py: one select.epoll loop over every socket, in a process of its own",
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


class EpollClients:
    """bench/epoll_ws.py, the default client: every socket in one epoll loop in a child
    process. ``samples`` fill in at ``collect``, when the child reports."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.socket_count = 0
        self._process: asyncio.subprocess.Process | None = None

    async def connect_all(self, ports: list[int], per_replica: int, token: str) -> None:
        port_args = [arg for port in ports for arg in ("--port", str(port))]
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench" / "epoll_ws.py"), *port_args,
            "--per-port", str(per_replica), "--token", token,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), DRAIN_TIMEOUT_S)
        if not line.startswith(b"ready "):
            raise RuntimeError(f"bench/epoll_ws.py did not connect: {line!r}")
        self.socket_count = int(line.split()[1])

    def start_reading(self) -> None:
        """The child reads from the start."""

    async def collect(self, expected: int, timeout_s: float) -> None:
        """Wait for ``expected`` frames (or ``timeout_s``), then take the child's samples."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(f"expect {expected}\n".encode())
        await process.stdin.drain()
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
        except TimeoutError:
            process.stdin.write(b"stop\n")
            await process.stdin.drain()
            line = await process.stdout.readline()
        count = int(line.split()[1])
        self.samples = array("d", await process.stdout.readexactly(count * 8)).tolist()

    def cpu_s(self) -> float:
        return cpu_s(self._process.pid) if self._process is not None else 0.0

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


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


def start_bare(port: int, redis_url: str, log_dir: Path) -> subprocess.Popen[bytes]:
    """A bench/bare_fanout.py replica: the floor the real ones are compared with."""
    log = open(log_dir / f"bare-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "bare_fanout.py"),
            "--port",
            str(port),
            "--redis-url",
            redis_url,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"bench/bare_fanout.py on {port} did not start; see {log_dir}")
    return process


AnyClients = Clients | LeanClients | EpollClients


def new_clients(kind: str) -> AnyClients:
    if kind == "epoll":
        return EpollClients()
    return LeanClients() if kind == "lean" else Clients()


async def connect_all(clients: AnyClients, ports: list[int], per_replica: int, token: str) -> None:
    """``per_replica`` sockets to each port, 50 handshakes at a time."""
    if isinstance(clients, EpollClients):
        await clients.connect_all(ports, per_replica, token)
        return
    for port in ports:
        url = f"ws://127.0.0.1:{port}/api/v1/inbox"
        for start in range(0, per_replica, 50):
            batch = min(50, per_replica - start)
            if isinstance(clients, LeanClients):
                connects = [clients.connect("127.0.0.1", port, "/api/v1/inbox", token) for _ in range(batch)]
            else:
                connects = [clients.connect(url, token) for _ in range(batch)]
            await asyncio.gather(*connects)


def report(figures: dict[str, Any]) -> None:
    cpu = figures["cpu_ms_per_event"]
    print(
        f"  p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms, "
        f"lost {figures['lost_frames']}; CPU per event: clients {cpu['clients']} ms, "
        f"replicas {cpu['replicas']} ms",
        flush=True,
    )


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fan_out(
    clients: AnyClients,
    publisher: redis.asyncio.Redis,
    account_id: str,
    events: int,
    rate: float,
    replica_pids: list[int],
) -> dict[str, Any]:
    """Publish ``events`` through ``inbox.publish`` at ``rate``: the latency of every frame,
    and the CPU the clients (this process) and the replicas spent per event, which on two
    shared cores is what the latency is made of."""
    clients.start_reading()
    expected = events * (clients.socket_count if isinstance(clients, EpollClients) else len(clients.sockets))
    print(f"  publishing {events} events at {rate}/s → {expected} frames …", flush=True)

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

    def clients_cpu_s() -> float:  # this process publishes too: a small part of it
        return _own_cpu_s() + (clients.cpu_s() if isinstance(clients, EpollClients) else 0.0)

    clients_before, replicas_before = clients_cpu_s(), sum(cpu_s(pid) for pid in replica_pids)
    await paced(events, rate, send)
    if isinstance(clients, EpollClients):
        await clients.collect(expected, DRAIN_TIMEOUT_S)
    else:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while len(clients.samples) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    own_ms, replicas_ms = (
        (clients_cpu_s() - clients_before) * 1000,
        (sum(cpu_s(pid) for pid in replica_pids) - replicas_before) * 1000,
    )
    figures: dict[str, Any] = percentiles(clients.samples)
    figures["lost_frames"] = expected - len(clients.samples)
    figures["cpu_ms_per_event"] = {
        "clients": round(own_ms / events, 2),
        "replicas": round(replicas_ms / events, 2),
    }
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = round(os.getloadavg()[0], 2)
    work = Path(tempfile.mkdtemp(prefix="baton-bench-fanout-"))
    postgres = EmbeddedPostgres(work / "postgres", free_port(), durable=False)
    redis_server = EmbeddedRedis(work / "redis", free_port(), durable=False)
    servers: list[subprocess.Popen[bytes]] = []
    clients = new_clients(args.client)
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

        publisher = redis.asyncio.Redis.from_url(redis_server.url)
        print(
            f"floor: bench/bare_fanout.py, 2 bare replicas × {args.clients_per_replica} sockets, "
            f"{args.events} events …",
            flush=True,
        )
        floor_ports = [free_port(), free_port()]
        bare = [start_bare(port, redis_server.url, work) for port in floor_ports]
        floor_clients = new_clients(args.client)
        try:
            await connect_all(floor_clients, floor_ports, args.clients_per_replica, token)
            floor = await fan_out(
                floor_clients, publisher, account_id, args.events, args.rate, [p.pid for p in bare]
            )
        finally:
            await floor_clients.close()
            for process in bare:
                process.terminate()
                process.wait(15)
        report(floor)

        ports = [free_port(), free_port()]
        profile_to = args.profile.resolve() if args.profile else None
        servers = [start_server(port, env, work, profile_to) for port in ports]
        for port in ports:
            if not wait_until(functools.partial(_ready, port), 30):
                raise RuntimeError(f"baton serve on {port} did not start; see {work}")
        rss_before = [rss_kib(server.pid) for server in servers]

        print(f"connecting {args.clients_per_replica} clients to each of 2 replicas …", flush=True)
        await connect_all(clients, ports, args.clients_per_replica, token)
        await asyncio.sleep(IDLE_SETTLE_S)  # let allocations settle before reading RSS
        rss_after = [rss_kib(server.pid) for server in servers]
        per_socket_kib = [
            (after - before) / args.clients_per_replica
            for before, after in zip(rss_before, rss_after, strict=True)
        ]
        print(f"  RSS per idle socket: {', '.join(f'{k:.1f}' for k in per_socket_kib)} KiB", flush=True)

        hub = await fan_out(clients, publisher, account_id, args.events, args.rate, [s.pid for s in servers])
        await publisher.aclose()
        report(hub)
        return {
            "benchmark": "fanout",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "cpus": os.cpu_count(),
                # Other work on the machine skews every figure; this says how busy it was.
                "load_average_1m_before": load_before,
                "load_average_1m_after": round(os.getloadavg()[0], 2),
            },
            "replicas": 2,
            "clients_per_replica": args.clients_per_replica,
            "events": args.events,
            "rate_per_s": args.rate,
            "client": CLIENT_KINDS[args.client],
            "raw_redis_publish_to_subscriber": raw,
            "baton_publish_to_websocket": hub,
            "ratio_p50_to_raw": round(hub["p50_ms"] / raw["p50_ms"], 2),
            "ratio_p99_to_raw": round(hub["p99_ms"] / raw["p99_ms"], 2),
            "floor_bare_fanout": floor,
            "ratio_p50_to_floor": round(hub["p50_ms"] / floor["p50_ms"], 2),
            "ratio_p99_to_floor": round(hub["p99_ms"] / floor["p99_ms"], 2),
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
        default="epoll",
        help="the websocket clients: epoll (bench/epoll_ws.py, the default), lean or aiohttp",
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
