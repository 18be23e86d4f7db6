"""A TCP proxy that can be switched off: Redis "down" for one process, then back.

``down()`` closes the listening port and every open connection (clients get refused /
reset, as from a Redis that stopped); ``up()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from urllib.parse import urlsplit, urlunsplit

from cli.processes import free_port

TIMEOUT_S = 10.0
CHUNK_BYTES = 65536


class TcpProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = parts
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="TcpProxy")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        netloc = f"127.0.0.1:{self.port}"
        if self._upstream_url.password:
            netloc = f":{self._upstream_url.password}@{netloc}"
        return urlunsplit((self._upstream_url.scheme, netloc, self._upstream_url.path, "", ""))

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(TIMEOUT_S)  # type: ignore[arg-type]

    def start(self) -> TcpProxy:
        self._thread.start()
        self.up()
        return self

    def up(self) -> None:
        self._run(self._listen())

    def down(self) -> None:
        self._run(self._close())

    def stop(self) -> None:
        self.down()
        self._run(self._finish_clients())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT_S)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _finish_clients(self) -> None:
        # A connection's pipes may still be waiting on a closed peer: end them here, or the
        # stopped loop leaves them pending ("Task was destroyed but it is pending!").
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(CHUNK_BYTES):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
