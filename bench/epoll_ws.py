"""Many inbox websockets read by one epoll loop, in a process of its own.

    python bench/epoll_ws.py --port P [--port Q …] --per-port N --token T

The load generator of bench/fanout.py, like wrk: not a client anyone should ship. On
two cores the clients share the CPU with the servers they measure, so every microsecond
a client spends per frame shows up in the latency it reports. ``bench/lean_ws.py`` (one
``asyncio.Protocol`` per socket, in the publisher's event loop) spent about 8 µs per
frame; this one makes the handshakes with blocking sockets, then reads with a bare
``select.epoll`` loop: one ``recv`` per ready socket, the frames parsed by hand, the
send time read out of each event frame without decoding its JSON, a masked pong for each
ping. It runs apart from the publisher, so the two do not share a GIL.

Talks to its parent on stdin and stdout:
  prints ``ready <sockets>`` once every socket has had its ``hello``;
  reads ``expect <frames>``: stops once that many event frames have arrived, or on
  ``stop`` or end of input; then writes ``samples <count>`` and the delays (ms) as
  native doubles (``array('d')``).
"""

from __future__ import annotations

import argparse
import base64
import os
import select
import socket
import struct
import sys
import time
from array import array

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
MARK = b'"problem_summary":"'
HANDSHAKE_TIMEOUT_S = 30.0
RECV_BYTES = 65536


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask), for the pongs; payloads here are < 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def frames(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole frames at the start of ``buffer`` (opcode, payload), and the rest."""
    found: list[tuple[int, bytes]] = []
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
        found.append((opcode, buffer[offset + header : end]))
        offset = end
    return found, buffer[offset:]


def open_socket(host: str, port: int, path: str, token: str) -> tuple[socket.socket, bytes]:
    """A connected websocket that has had its hello; returns it and any bytes after."""
    sock = socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(RECV_BYTES)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        buffer += chunk
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace"))
    while True:
        found, rest = frames(buffer)
        if any(opcode == OP_TEXT and b'"hello"' in payload for opcode, payload in found):
            sock.setblocking(False)
            return sock, rest
        chunk = sock.recv(RECV_BYTES)
        if not chunk:
            raise ConnectionError("closed before the hello")
        buffer += chunk


def read(sockets: dict[int, socket.socket], leftovers: dict[int, bytes]) -> array[float]:
    """Read every socket until the expected count arrives or the parent says stop."""
    samples: array[float] = array("d")
    expected: int | None = None
    poller = select.epoll()
    stdin = sys.stdin.fileno()
    poller.register(stdin, select.EPOLLIN)
    for fd in sockets:
        poller.register(fd, select.EPOLLIN)
    command = b""
    while expected is None or len(samples) < expected:
        for fd, _ in poller.poll():
            if fd == stdin:
                chunk = os.read(stdin, 1024)
                command += chunk
                if not chunk or b"stop" in command:
                    return samples
                if command.endswith(b"\n") and command.startswith(b"expect "):
                    expected = int(command.split()[1])
                    command = b""
                continue
            sock = sockets[fd]
            try:
                data = sock.recv(RECV_BYTES)
            except BlockingIOError:
                continue
            now_ns = time.time_ns()
            if not data:
                poller.unregister(fd)
                continue
            if fd in leftovers:
                data = leftovers.pop(fd) + data
            found, rest = frames(data)
            if rest:
                leftovers[fd] = rest
            for opcode, payload in found:
                if opcode == OP_TEXT:
                    start = payload.find(MARK)
                    if start >= 0:
                        start += len(MARK)
                        sent_ns = int(payload[start : payload.index(b'"', start)])
                        samples.append((now_ns - sent_ns) / 1e6)
                elif opcode == OP_PING:
                    sock.send(masked_frame(OP_PONG, payload))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--per-port", type=int, required=True)
    parser.add_argument("--path", default="/api/v1/inbox")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    sockets: dict[int, socket.socket] = {}
    leftovers: dict[int, bytes] = {}
    for port in args.port:
        for _ in range(args.per_port):
            sock, rest = open_socket(args.host, port, args.path, args.token)
            sockets[sock.fileno()] = sock
            if rest:
                leftovers[sock.fileno()] = rest
    print(f"ready {len(sockets)}", flush=True)
    samples = read(sockets, leftovers)
    out = sys.stdout.buffer
    out.write(f"samples {len(samples)}\n".encode())
    out.write(samples.tobytes())
    out.flush()
    for sock in sockets.values():
        sock.close()


if __name__ == "__main__":
    main()
