"""The inbox's websocket protocol: uvicorn's sans-I/O websockets protocol (which ``baton
serve`` runs), with the client's limits enforced as frames arrive and one fast path for
the frames the server sends.

**What a client may send** (``server.inbox_limits``). websockets' parser reads a frame's
length from its header and refuses one over ``max_message_size`` (also counting the
fragments of a message so far) before reading its payload: close 1009, the rest of the
connection's bytes discarded as they come. The limit is read afresh for each frame, so
the connection starts at 4 KiB (the one auth message) and the app raises it to 16 KiB
through the ``RAISE_MESSAGE_LIMIT`` scope extension once the socket is authenticated,
before it says hello. A frame the client pipelined before that hello counts as sent
before auth. uvicorn's own ``ws_max_size`` (16 MiB by default) plays no part. Frames of
any kind beyond ``CLIENT_FRAMES_PER_S`` (a token bucket) close the socket with 1008, so
neither a message flood nor a ping flood costs the loop more than that. A text message
that is not UTF-8 is closed 1007 without the traceback uvicorn logs for it.

**What the server sends.** One event goes to hundreds of sockets per replica. Through
ASGI, each of those sends wakes the socket's task, passes Litestar's and uvicorn's send
layers and frames the same bytes again: several times the cost of the write itself. The
scope extension ``WRITE_TEXT_NOW`` writes this text frame now if the connection is open
and its transport is not pushing back, else says no. The hub takes it only while the
socket's reader is parked with nothing queued (``inbox.Subscriber.attach_writer``), so
frames keep their order; everything else takes the ASGI path as before, and so does any
server that does not offer the extension. Nothing here runs per outgoing frame but that.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from server.inbox_limits import (
    CLIENT_FRAMES_PER_S,
    CLOSE_INVALID_DATA,
    CLOSE_TOO_MANY_FRAMES,
    MESSAGE_MAX_BYTES,
    PRE_AUTH_MESSAGE_MAX_BYTES,
    FrameRate,
)

WRITE_TEXT_NOW = "baton.write_text_now"
"""Scope extension: ``write(text_utf8: bytes) -> bool``, True when the frame was written."""
RAISE_MESSAGE_LIMIT = "baton.raise_message_limit"
"""Scope extension: ``raise_limit() -> None``, the socket is authenticated: from its next
frame on, messages of up to ``MESSAGE_MAX_BYTES`` are read."""

LINGER_S = 2.0
"""After failing a connection, how long the client's further bytes are read and dropped
so that our close frame reaches it (see ``handle_parser_exception``)."""

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
    """uvicorn's sans-I/O websockets protocol, with the inbox's limits on what the client
    sends and the ``WRITE_TEXT_NOW`` / ``RAISE_MESSAGE_LIMIT`` extensions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read by the parser at the start of every frame (not only at construction).
        self.conn.max_message_size = PRE_AUTH_MESSAGE_MAX_BYTES
        self.conn.max_fragment_size = None
        self.frame_rate = FrameRate(self.loop.time())
        self.failed_by_protocol = False
        """True once this side failed the connection (a client's bad frame, size, rate)."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The app's task is created above but runs only on the loop's next turn.
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][WRITE_TEXT_NOW] = self.write_text_now
            scope["extensions"][RAISE_MESSAGE_LIMIT] = self.raise_message_limit

    def raise_message_limit(self) -> None:
        self.conn.max_message_size = MESSAGE_MAX_BYTES

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

    # -- what the client sends ----------------------------------------------------------

    def _within_rate(self) -> bool:
        """Count one incoming frame; fail the connection (1008) when it is one too many.
        Frames parsed in the same read after a failure are dropped."""
        if self.failed_by_protocol:
            return False
        if self.frame_rate.allow(self.loop.time()):
            return True
        self.fail_connection(
            CLOSE_TOO_MANY_FRAMES, f"too many frames: at most {CLIENT_FRAMES_PER_S:g} a second"
        )
        return False

    def fail_connection(self, code: int, reason: str) -> None:
        """Close with ``code`` now, read nothing more, tell the app it is over."""
        if self.close_sent or self.transport.is_closing():
            self.failed_by_protocol = True  # the app closed first: its close stands
            return
        self.conn.fail(code, reason)
        self.handle_parser_exception()

    def handle_parser_exception(self) -> None:
        """Also reached from data_received when websockets' parser refused a frame (1002
        malformed, 1009 too big), and again for each later read: either way the close is
        ours, not the app's.

        uvicorn closes the TCP connection at once. With the client's bytes still arriving
        (the rest of a big frame, a flood), the kernel then answers with a reset, which
        destroys our close frame unread: the client would never learn why. So the close is
        a lingering one: the close frame, our FIN, then the client's bytes read and thrown
        away (websockets' parser discards them: no buffering) until its FIN, or for at most
        ``LINGER_S``."""
        if self.failed_by_protocol:
            return
        self.failed_by_protocol = True
        self.stop_keepalive()
        sent = self.conn.close_sent
        code, reason = (sent.code, sent.reason) if sent is not None else (1006, "")
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # Also keeps uvicorn from closing the transport as soon as the app returns.
        self.close_timer = self.loop.call_later(LINGER_S, self.transport.close)

    def handle_text(self, event: Frame) -> None:
        if self._within_rate():
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        if self._within_rate():
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if self._within_rate():
            super().handle_cont(event)

    def handle_ping(self) -> None:
        # websockets has queued the pong already: over the rate it goes out before our close.
        if self._within_rate():
            super().handle_ping()

    def handle_pong(self, event: Frame) -> None:
        if self._within_rate():
            super().handle_pong(event)

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, except that a text message that is not UTF-8 closes the socket 1007
        quietly: uvicorn logs a traceback at ERROR for what is only a client's garbage."""
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past the close: reads stay on until the peer's close reply arrives
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.fail_connection(CLOSE_INVALID_DATA, "a text message must be UTF-8")
                return
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    async def send(self, message: Any) -> None:
        # Once we failed the connection, the app may not have heard yet: its next send is
        # the client being gone (as after a disconnect), its close a no-op, and neither
        # uvicorn's RuntimeError for "a send after the close", logged with a traceback.
        if self.failed_by_protocol and message["type"] in ("websocket.send", "websocket.close"):
            if message["type"] == "websocket.send":
                raise ClientDisconnected()
            return
        await super().send(message)
