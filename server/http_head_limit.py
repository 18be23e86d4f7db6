"""Request heads of at most 16 KiB: the request line and headers, counted as they arrive.

uvicorn's httptools protocol has no limit of its own, and httptools hands a header to
Python only once it is complete, keeping what it has so far in memory (a 30 MB header
value took one replica from 97 to 188 MB). ``HeadLimitedHttpToolsProtocol``, which
``baton serve`` runs, counts the bytes it feeds the parser until the head is complete,
never feeds more than ``MAX_HEAD_BYTES``, and answers ``431`` and closes as soon as a head
would need more. A websocket upgrade's head is an HTTP head like any other, and counts;
one that websockets then refuses for its own, tighter limits is answered at once.

On a keep-alive connection each request's head is counted from the end of the request
before it; bytes of a pipelined head that came in the same read as the end of the
previous request are not counted, which lets such a head reach twice the limit at most.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
_TOO_LARGE_BODY = b"Request headers too large (at most 16 KiB in all)."


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the size of each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0
        self._handed_over = False  # upgraded: the websocket protocol has the transport

    def data_received(self, data: bytes) -> None:
        while self._reading_head and data and not self._handed_over:
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._refuse_head()
                return
            if len(data) <= room:
                piece, data = data, b""
            else:
                piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if data and not self._handed_over:
            super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def handle_websocket_upgrade(self) -> None:
        self._handed_over = True
        super().handle_websocket_upgrade()
        self._answer_a_refused_handshake()

    def _answer_a_refused_handshake(self) -> None:
        """websockets refuses a head it cannot take (a line over 8 KiB: 431, over 128
        headers: 431, a request line too long: 414) by queueing the answer, but uvicorn's
        sans-I/O protocol only writes what an event asks for, and a refusal is none: the
        client waited for its own timeout on an open connection. Write it and close."""
        websocket: Any = self.transport.get_protocol()
        conn = getattr(websocket, "conn", None)
        if conn is None or getattr(conn, "handshake_exc", None) is None or self.transport.is_closing():
            return
        self.transport.write(b"".join(conn.data_to_send()))
        self.transport.close()

    def _refuse_head(self) -> None:
        self.logger.warning("Request head over %d bytes: answered 431.", MAX_HEAD_BYTES)
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(_TOO_LARGE_BODY)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    _TOO_LARGE_BODY,
                ]
            )
        )
        self.transport.close()
