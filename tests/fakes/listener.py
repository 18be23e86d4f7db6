"""A bare TCP listener on loopback that records every connection made to it.

The witness of the outbound tests: a destination Baton must refuse points here, and the
test asserts that nothing ever connected. Whoever does connect gets one canned HTTP
answer, so a client that was let through finishes its request and the test fails on
the recorded connection, not on a hang.
"""

from __future__ import annotations

import contextlib
import socket
import threading

ACCEPT_POLL_S = 0.1
READ_TIMEOUT_S = 1.0
READ_MAX_BYTES = 65536
CANNED_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
)


class RecordingListener:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._socket = socket.create_server((host, 0))
        self.port: int = self._socket.getsockname()[1]
        self.connections: list[bytes] = []  # what each connection sent first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket.settimeout(ACCEPT_POLL_S)
        self._thread = threading.Thread(target=self._serve, daemon=True, name="RecordingListener")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(READ_TIMEOUT_S)
                received = b""
                with contextlib.suppress(OSError):
                    received = conn.recv(READ_MAX_BYTES)
                with self._lock:
                    self.connections.append(received)
                with contextlib.suppress(OSError):
                    conn.sendall(CANNED_ANSWER)

    @property
    def contacted(self) -> int:
        with self._lock:
            return len(self.connections)

    def __enter__(self) -> RecordingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._socket.close()
        self._thread.join(READ_TIMEOUT_S + ACCEPT_POLL_S + 1)
