"""A websocket client written by hand over a plain TCP socket, for frames no well-behaved
library would send: RFC 6455 frames built byte by byte, and the server's answer read back
as it is on the wire (its close code, or the connection simply ending)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
READ_TIMEOUT_S = 10.0
ZERO_MASK = b"\x00\x00\x00\x00"
"""A legal masking key that leaves the payload as it is: big payloads cost no masking."""


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
    mask: bytes | None = None,
) -> bytes:
    """One frame's bytes; ``length`` may lie about ``payload``; ``rsv`` sets RSV1-3 (0-7)."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    key = mask if mask is not None else os.urandom(4)
    return head + key + _masked(payload, key)


def header(opcode: int, length: int, *, fin: bool = True, mask: bytes = ZERO_MASK) -> bytes:
    """Just a frame's header (and masking key), announcing ``length`` payload bytes."""
    return frame(opcode, b"", fin=fin, length=length, mask=mask)


def _masked(payload: bytes, key: bytes) -> bytes:
    if key == ZERO_MASK or not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def text(data: str | bytes, **options: object) -> bytes:
    return frame(OP_TEXT, data.encode() if isinstance(data, str) else data, **options)  # type: ignore[arg-type]


def auth_frame(token: str) -> bytes:
    return text(json.dumps({"type": "auth", "token": token}))


@dataclass
class Ending:
    """How the server ended a connection: its close frame's code, or None when the TCP
    connection ended without one; ``frames`` are the data frames it sent before."""

    code: int | None
    reason: str
    frames: list[bytes]
    reset: bool = False
    timed_out: bool = False


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.half_closed = False

    @classmethod
    async def open(cls, port: int, path: str = "/api/v1/inbox", *, limit: int = 1 << 20) -> RawSocket:
        """TCP connect and the opening handshake (101 checked)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=limit)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """False when the server had already closed (reset, broken pipe), or we had."""
        if self.half_closed:
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def read_frame(self, timeout_s: float = READ_TIMEOUT_S) -> tuple[int, bytes]:
        """(opcode, payload) of the server's next frame (servers do not mask)."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout_s)
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return head[0] & 0x0F, await asyncio.wait_for(self.reader.readexactly(size), timeout_s)

    async def read_json(self, timeout_s: float = READ_TIMEOUT_S) -> dict[str, object]:
        while True:
            opcode, payload = await self.read_frame(timeout_s)
            if opcode == OP_TEXT:
                decoded: dict[str, object] = json.loads(payload)
                return decoded
            assert opcode in (OP_PING, OP_PONG), (opcode, payload[:100])

    async def authenticate(self, token: str) -> dict[str, object]:
        """Send the first-message auth; the server's hello."""
        await self.send(auth_frame(token))
        hello = await self.read_json()
        assert hello.get("type") == "hello", hello
        return hello

    async def ending(self, timeout_s: float = READ_TIMEOUT_S) -> Ending:
        """Read until the server closes: its close code (None: no close frame came)."""
        frames: list[bytes] = []
        try:
            while True:
                opcode, payload = await self.read_frame(timeout_s)
                if opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    reason = payload[2:].decode(errors="replace")
                    await self.send(frame(OP_CLOSE, payload[:2]))  # the closing handshake
                    await self._wait_for_eof(timeout_s)
                    return Ending(code, reason, frames)
                if opcode in (OP_TEXT, OP_BINARY):
                    frames.append(payload)
        except asyncio.IncompleteReadError:
            return Ending(None, "", frames)
        except ConnectionError:  # reset, or a broken pipe seen by our last write
            return Ending(None, "", frames, reset=True)
        except TimeoutError:
            return Ending(None, f"still open after {timeout_s:g} s", frames, timed_out=True)

    async def _wait_for_eof(self, timeout_s: float) -> None:
        """After its close frame a server ends the TCP connection (RFC 6455 7.1.1)."""
        with contextlib.suppress(ConnectionError, TimeoutError):
            while await asyncio.wait_for(self.reader.read(65536), timeout_s):
                pass

    def half_close(self) -> None:
        """Send our FIN: we will write no more, but still read."""
        self.half_closed = True
        with contextlib.suppress(OSError):
            self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
