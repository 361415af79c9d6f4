"""Shared fixtures: a real redis-server, a manual clock, the fake Telegram and Yuanqi servers."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from bot import texts
from tests.fakes.redis_server import RedisServerError, free_port, redis_server
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yuanqi import FakeYuanqi
from tests.harness import RunningBot, make_settings
from tests.replicas import BotProcess, Launch, bot_env

_free_port = free_port  # test modules import it from here


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when given (a scratch database: tests flush it), else a private redis-server."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(redis_server())
        except RedisServerError as exc:
            pytest.exit(str(exc), returncode=3)
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose(close_connection_pool=True)


class CountingConnection(Connection):
    """A connection that counts what it writes to the socket: one write per round trip."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture(name="counting")
async def _counting(redis_url: str, redis: Redis) -> AsyncIterator[tuple[Redis, type[CountingConnection]]]:
    """A second client whose socket writes are counted, already connected (handshake not counted)."""
    counter: type[CountingConnection] = type("Counter", (CountingConnection,), {"writes": 0})
    client = Redis.from_url(redis_url, connection_class=counter)
    await client.ping()
    counter.writes = 0
    yield client, counter
    await client.aclose(close_connection_pool=True)


class ManualClock:
    """A Clock whose time moves only when the test says so; sleepers wake in deadline order."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its own deadline, letting tasks run between."""
        target = self._now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            await settle()
        self._now = target
        await settle()


async def eventually(check: Callable[[], Awaitable[bool]], tries: int = 200) -> None:
    """Poll a condition about the server's view (a closed socket is noticed asynchronously)."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def pubsub_clients(redis: Redis) -> int:
    return len(await redis.client_list(_type="pubsub"))


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until the loop is quiet (no I/O involved)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def yuanqi() -> AsyncIterator[FakeYuanqi]:
    async with FakeYuanqi() as fake:
        yield fake


@pytest.fixture
async def make_bot(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, redis: Redis
) -> AsyncIterator[Callable[..., Awaitable[RunningBot]]]:
    """Start the real bot against the fakes; keyword arguments override settings."""
    bots: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        url = overrides.pop("redis_url", redis_url)
        bot = RunningBot(telegram, yuanqi, make_settings(telegram, yuanqi, url, **overrides))
        await bot.start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        await bot.stop()


@pytest.fixture
async def bot(make_bot: Callable[..., Awaitable[RunningBot]]) -> RunningBot:
    return await make_bot()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """A bot started by a test sets the process's default language: put it back afterwards."""
    yield
    texts.use_default_language("en")


@pytest.fixture
async def launch(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, redis: Redis, tmp_path: Path
) -> AsyncIterator[Launch]:
    """Start n real replicas (``python -m bot``; webhook mode unless told otherwise), each ready;
    all are killed at the end."""
    started: list[BotProcess] = []

    async def replicas(n: int, *, webhook: bool = True, **extra: str) -> list[BotProcess]:
        env = bot_env(telegram, yuanqi, redis_url, **extra)
        procs = [BotProcess(f"bot{len(started) + i}", env, tmp_path, webhook=webhook) for i in range(n)]
        started.extend(procs)
        await asyncio.gather(*(p.start() for p in procs))
        return procs

    yield replicas
    for proc in started:
        proc.kill()
        if proc.proc is not None:
            await proc.proc.wait()
