"""A TCP pass-through in front of Redis that counts the bot's round trips.

A round trip is a request phase: client bytes that arrive after the server last answered on that
connection (or on a fresh connection). A pipeline or MULTI/EXEC block sent in one go counts
once however many reads the server needs for it; the replies, however many chunks, end it.
Redis's own ``total_reads_processed`` would count a 20 kB append twice (it reads 16 kB at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from urllib.parse import urlsplit

#: Commands redis-py sends when it opens a connection (handshake, not work for a turn).
SETUP_COMMANDS = frozenset({b"HELLO", b"CLIENT", b"AUTH", b"SELECT", b"READONLY"})
_FIRST_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def first_command(data: bytes) -> bytes:
    """The name of the first command in a RESP request (upper case), or b"" if unreadable."""
    found = _FIRST_COMMAND.match(data)
    return found.group(1).upper() if found else b""


class CountingProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 6379
        self._path = parts.path or "/0"
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.round_trips = 0
        self.setup_round_trips = 0  # of which: connection handshakes (HELLO, CLIENT SETINFO, ...)
        self.connections = 0
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}{self._path}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(self._host, self._port)
            answered = [True]  # the server has answered everything sent so far

            async def requests() -> None:
                while data := await reader.read(65536):
                    if answered[0]:
                        self.round_trips += 1
                        self.setup_round_trips += first_command(data) in SETUP_COMMANDS
                        answered[0] = False
                    upstream.write(data)
                    await upstream.drain()
                upstream.write_eof()

            async def replies() -> None:
                while data := await up_reader.read(65536):
                    answered[0] = True
                    writer.write(data)
                    await writer.drain()
                writer.write_eof()

            async with asyncio.TaskGroup() as group:
                group.create_task(requests())
                group.create_task(replies())
        except* (ConnectionError, OSError):
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
                    with contextlib.suppress(Exception):
                        await stream.wait_closed()
            self._tasks.discard(task)
