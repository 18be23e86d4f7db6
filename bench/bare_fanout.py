"""The fan-out floor: the least a Python replica can do to fan an event out to websockets.

    python bench/bare_fanout.py --port PORT --redis-url URL

A measuring instrument for bench/fanout.py, not a server anyone should run. It does what
a Baton replica must do per event and nothing else: one pub/sub subscription on the
inbox's own channel pattern (``inbox.keys.LIVE_PATTERN``), and for each message one
unmasked text frame, framed once and written to every connected socket with uvloop's
``transport.write``. No auth, no Origin check, no replay, no buffers, no ASGI, no
Litestar, no per-socket bookkeeping. Run in the same benchmark, with the same clients
and the same publishes as the real replicas, it prices what this machine's kernel,
loopback TCP, uvloop and the clients cost by themselves, so the real replicas' figures
can be read as a ratio to it.

It answers any upgrade request with ``101`` and a ``{"type":"hello"}`` frame (what the
lean client waits for), and prints ``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inbox import keys

UPGRADE_ANSWER = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: bare\r\n\r\n"  # the lean client does not check the accept key
)
HELLO = b'{"type":"hello"}'


def text_frame(payload: bytes) -> bytes:
    """An unmasked RFC 6455 text frame (the server side never masks)."""
    size = len(payload)
    if size < 126:
        return bytes([0x81, size]) + payload
    if size < 1 << 16:
        return bytes([0x81, 126]) + size.to_bytes(2, "big") + payload
    return bytes([0x81, 127]) + size.to_bytes(8, "big") + payload


class BareSocket(asyncio.Protocol):
    def __init__(self, open_sockets: list[asyncio.Transport]) -> None:
        self._open = open_sockets
        self._head = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport in self._open:
            return  # after the upgrade: pongs and the like, ignored
        self._head += data
        if b"\r\n\r\n" in self._head:
            self._transport.write(UPGRADE_ANSWER + text_frame(HELLO))
            self._open.append(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport in self._open:
            self._open.remove(self._transport)


async def serve(port: int, redis_url: str) -> None:
    open_sockets: list[asyncio.Transport] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: BareSocket(open_sockets), "127.0.0.1", port, backlog=1024)
    client = redis.asyncio.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(keys.LIVE_PATTERN)
    print("ready", flush=True)
    async with server:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None or message["type"] != "pmessage":
                continue
            frame = text_frame(message["data"])
            for transport in open_sockets:
                transport.write(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.port, args.redis_url))


if __name__ == "__main__":
    main()
