"""A TCP pass-through in front of Redis that counts the bot's round trips, and what each one was.

A round trip is a request phase: client bytes that arrive after the server last answered on that
connection (or on a fresh connection). A pipeline or MULTI/EXEC block sent in one go counts
once however many reads the server needs for it; the replies, however many chunks, end it.
Redis's own ``total_reads_processed`` would count a 20 kB append twice (it reads 16 kB at a time).

Each round trip is also classified by the commands in its first chunk: a command's name, or for
``EVALSHA`` the script's name (``mailbox.record``: the constant ``_RECORD`` in
``storage/mailbox.py``, found by its SHA-1), joined with ``+`` for a pipeline. Several bot
processes may share one proxy (the counts then add up) or each have their own (see
:class:`ProxyGroup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import re
import time
from collections import Counter
from collections.abc import Iterable
from urllib.parse import urlsplit

#: Commands redis-py sends when it opens a connection (handshake, not work for a turn).
SETUP_COMMANDS = frozenset({b"HELLO", b"CLIENT", b"AUTH", b"SELECT", b"READONLY"})
#: ... and ``SCRIPT LOAD``, once per script and Redis server (after NOSCRIPT), counted with them.
_FIRST_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")
#: Where the bot's Lua scripts live (module-level string constants holding ``redis.call``).
SCRIPT_MODULES = ("storage.mailbox", "storage.semaphore", "storage.limiter", "storage.usage")
_SUBCOMMANDS = frozenset({b"SCRIPT", b"CLIENT", b"CONFIG", b"FUNCTION"})
_MAX_KIND_COMMANDS = 4  # a longer pipeline is named by its first commands and "+…"


def first_command(data: bytes) -> bytes:
    """The name of the first command in a RESP request (upper case), or b"" if unreadable."""
    found = _FIRST_COMMAND.match(data)
    return found.group(1).upper() if found else b""


def is_setup(data: bytes) -> bool:
    """Does this request open a connection (HELLO, CLIENT SETINFO, ...) or load a script?"""
    command = first_command(data)
    if command == b"SCRIPT":
        words = _commands(data, 0)
        return bool(words) and len(words[0]) > 1 and words[0][1].upper() == b"LOAD"
    return command in SETUP_COMMANDS


def script_names(modules: Iterable[str] = SCRIPT_MODULES) -> dict[bytes, str]:
    """SHA-1 (hex, as EVALSHA sends it) -> ``module.name`` of every Lua script constant found."""
    names: dict[bytes, str] = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        short = module_name.rsplit(".", 1)[-1]
        for name, value in vars(module).items():
            if isinstance(value, str) and "redis.call" in value:
                sha = hashlib.sha1(value.encode()).hexdigest().encode()  # noqa: S324 - Redis's own
                names[sha] = f"{short}.{name.strip('_').lower()}"
    return names


def _commands(data: bytes, limit: int) -> list[list[bytes]]:
    """The first ``limit`` + 1 complete RESP commands in ``data`` (each as its first two words)."""
    out: list[list[bytes]] = []
    pos = 0
    words: list[bytes] = []
    try:
        while pos < len(data) and len(out) <= limit:
            if data[pos : pos + 1] != b"*":
                break
            end = data.index(b"\r\n", pos)
            count, pos = int(data[pos + 1 : end]), end + 2
            words = []
            for _ in range(count):
                end = data.index(b"\r\n", pos)
                size = int(data[pos + 1 : end])
                if len(words) < 2:
                    words.append(data[end + 2 : end + 2 + size])
                pos = end + 2 + size + 2
            if pos > len(data):
                out.append(words)  # the chunk ends inside this command: named all the same
                break
            out.append(words)
    except ValueError:  # the chunk ends inside a command's header: named by what was read
        if words and (not out or out[-1] is not words):
            out.append(words)
    return out


class CountingProxy:
    def __init__(self, upstream_url: str, scripts: dict[bytes, str] | None = None) -> None:
        parts = urlsplit(upstream_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 6379
        self._path = parts.path or "/0"
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._scripts = script_names() if scripts is None else scripts
        self.round_trips = 0
        self.setup_round_trips = 0  # of which: handshakes (HELLO, CLIENT SETINFO, ...), SCRIPT LOAD
        self.connections = 0
        self.kinds: Counter[str] = Counter()  # round trips by what they carried (see kind())
        #: seconds from each round trip's request to the first byte of its reply (Redis plus
        #: this proxy; time the bot spends waiting for a pooled connection is not in it)
        self.latencies: list[float] = []
        self.url = ""

    def kind(self, data: bytes) -> str:
        """What a round trip carried: ``mailbox.next``, ``ZRANGE``, ``mailbox.touch+mailbox.record+…``."""
        names = []
        for words in _commands(data, _MAX_KIND_COMMANDS):
            command = words[0].upper() if words else b"?"
            if command == b"EVALSHA" and len(words) > 1:
                names.append(self._scripts.get(words[1], f"evalsha:{words[1][:8].decode(errors='replace')}"))
            elif command in _SUBCOMMANDS and len(words) > 1:
                names.append(f"{command.decode()} {words[1].upper().decode(errors='replace')}")
            else:
                names.append(command.decode(errors="replace"))
        if len(names) > _MAX_KIND_COMMANDS:
            names[_MAX_KIND_COMMANDS:] = ["…"]
        return "+".join(names) or "?"

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
            asked = [0.0]  # when the current round trip's request came

            async def requests() -> None:
                while data := await reader.read(65536):
                    if answered[0]:
                        self.round_trips += 1
                        self.setup_round_trips += is_setup(data)
                        self.kinds[self.kind(data)] += 1
                        answered[0], asked[0] = False, time.monotonic()
                    upstream.write(data)
                    await upstream.drain()
                upstream.write_eof()

            async def replies() -> None:
                while data := await up_reader.read(65536):
                    if not answered[0]:
                        self.latencies.append(time.monotonic() - asked[0])
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


class ProxyGroup:
    """One counting proxy per bot process (so each replica's round trips can be told apart),
    started as needed and kept across scenarios; the figures are sums over all of them."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream = upstream_url
        self._scripts = script_names()
        self.proxies: list[CountingProxy] = []

    async def urls(self, n: int) -> list[str]:
        """The URLs of the first ``n`` proxies (starting any that are missing)."""
        while len(self.proxies) < n:
            proxy = CountingProxy(self._upstream, self._scripts)
            await proxy.start()
            self.proxies.append(proxy)
        return [p.url for p in self.proxies[:n]]

    async def stop(self) -> None:
        for proxy in self.proxies:
            await proxy.stop()

    @property
    def round_trips(self) -> int:
        return sum(p.round_trips for p in self.proxies)

    @property
    def setup_round_trips(self) -> int:
        return sum(p.setup_round_trips for p in self.proxies)

    @property
    def connections(self) -> int:
        return sum(p.connections for p in self.proxies)

    @property
    def kinds(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for proxy in self.proxies:
            total.update(proxy.kinds)
        return total

    def per_proxy_round_trips(self) -> list[int]:
        return [p.round_trips for p in self.proxies]

    def latency_marks(self) -> list[int]:
        """Where each proxy's latency list ends now (for :meth:`latencies_since`)."""
        return [len(p.latencies) for p in self.proxies]

    def latencies_since(self, marks: list[int]) -> list[float]:
        return [x for i, p in enumerate(self.proxies)
                for x in p.latencies[(marks[i] if i < len(marks) else 0):]]
