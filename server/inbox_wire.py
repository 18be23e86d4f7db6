"""Inbox frames written straight to a websocket's transport, framed once for all sockets.

One event goes to hundreds of sockets per replica. Through ASGI, each of those sends
wakes the socket's task, passes Litestar's and uvicorn's send layers and frames the same
bytes again: several times the cost of the write itself. ``BatonWebSocketProtocol``
(uvicorn's sans-I/O websockets protocol, which ``baton serve`` runs) offers the app one
more scope extension, ``WRITE_TEXT_NOW``: write this text frame now if the connection is
open and its transport is not pushing back, else say no. The hub takes it only while the
socket's reader is parked with nothing queued (``inbox.Subscriber.attach_writer``), so
frames keep their order; everything else takes the ASGI path as before, and so does
any server that does not offer the extension.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

WRITE_TEXT_NOW = "baton.write_text_now"
"""Scope extension: ``write(text_utf8: bytes) -> bool``, True when the frame was written."""

_last_framed: tuple[bytes, bytes] | None = None


def framed_text(data: bytes) -> bytes:
    """The wire bytes of an unmasked text frame of ``data`` (a server's frames are not
    masked, so one framing serves every socket); the last one is kept, as the hub hands
    the same bytes object to every subscriber of an account in a row."""
    global _last_framed
    if _last_framed is not None and _last_framed[0] is data:
        return _last_framed[1]
    wire = Frame(Opcode.TEXT, data).serialize(mask=False)
    _last_framed = (data, wire)
    return wire


class BatonWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol, plus the ``WRITE_TEXT_NOW`` extension."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The app's task is created above but runs only on the loop's next turn.
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][WRITE_TEXT_NOW] = self.write_text_now

    def write_text_now(self, data: bytes) -> bool:
        if (
            self.close_sent
            or self.disconnected
            or not self.writable.is_set()  # paused: the client reads too slowly
            or self.conn.state is not State.OPEN
            or self.conn.extensions  # negotiated compression: frame through websockets
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(framed_text(data))
        return True
