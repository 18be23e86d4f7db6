"""A lean websocket reader for the fan-out benchmark: many sockets, little CPU per frame.

On two cores the benchmark's clients share the CPU with the servers they measure, and
a general-purpose client (aiohttp: a task wake-up, a frame object and a JSON parse per
frame) spent more CPU per frame than the server did, so its own queue dominated the
latency it reported. This one is an ``asyncio.Protocol`` per socket that speaks just
enough RFC 6455 for the job: the upgrade handshake, unmasked server frames, a masked
pong for each ping, and the send time read out of each event frame without decoding
its JSON. It is a load generator, like wrk, not a client anyone should ship.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from typing import cast

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
HANDSHAKE_TIMEOUT_S = 30.0


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask), for the pongs; payloads here are < 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


class LeanSocket(asyncio.Protocol):
    """One inbox socket: hands each text frame's payload to ``on_text``."""

    def __init__(self, path: str, host: str, token: str, on_text: Callable[[bytes], None]) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        self._on_text = on_text
        self._buffer = b""
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.hello: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if not self._upgraded:
            head, found, rest = buffer.partition(b"\r\n\r\n")
            if not found:
                self._buffer = buffer
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.hello.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self._upgraded, buffer = True, rest
        offset, size = 0, len(buffer)
        while size - offset >= 2:
            opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            header = 2
            if length == 126:
                if size - offset < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, offset + 2)
                header = 4
            elif length == 127:
                if size - offset < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, offset + 2)
                header = 10
            end = offset + header + length
            if end > size:
                break
            payload = buffer[offset + header : end]
            offset = end
            if opcode == OP_TEXT:
                if self.hello.done():
                    self._on_text(payload)
                else:
                    self.hello.set_result(payload)
            elif opcode == OP_PING and self.transport is not None:
                self.transport.write(masked_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE and self.transport is not None:
                self.transport.close()
        self._buffer = buffer[offset:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.hello.done():
            self.hello.set_exception(exc or ConnectionError("closed before the hello"))


MARK = b'"problem_summary":"'


class LeanClients:
    """Many ``LeanSocket``s; each event frame's delay goes to ``samples`` (ms).

    The publisher puts ``time.time_ns()`` in the event's ``problem_summary``."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.sockets: list[LeanSocket] = []

    def _on_text(self, payload: bytes) -> None:
        now_ns = time.time_ns()
        start = payload.find(MARK)
        if start < 0:
            return
        start += len(MARK)
        sent_ns = int(payload[start : payload.index(b'"', start)])
        self.samples.append((now_ns - sent_ns) / 1e6)

    async def connect(self, host: str, port: int, path: str, token: str) -> None:
        loop = asyncio.get_running_loop()
        _, socket = await loop.create_connection(
            lambda: LeanSocket(path, f"{host}:{port}", token, self._on_text), host, port
        )
        hello = await asyncio.wait_for(socket.hello, HANDSHAKE_TIMEOUT_S)
        assert b'"hello"' in hello, hello
        self.sockets.append(socket)

    def start_reading(self) -> None:
        """Frames are counted from the start; nothing to do (kept for the aiohttp shape)."""

    async def close(self) -> None:
        for socket in self.sockets:
            if socket.transport is not None:
                socket.transport.close()
