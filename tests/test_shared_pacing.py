"""SharedSlots: the pacer on Redis, shared by replicas (two pacers on two clients), and its fallback.

Real Redis and real time. Times are taken when ``slot()`` returns, up to a round trip after Redis
booked the slot, so lower bounds carry a small ``SLACK``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from bot.clock import SystemClock
from bot.reply.live import LiveReply
from bot.reply.pacing import ChatPacer, Priority
from bot.reply.ports import RateLimited
from bot.reply.render import Chunk
from bot.reply.shared_pacing import SharedSlots
from storage.limiter import RedisRateLimiter
from tests.conftest import _free_port

BOT_ID = 42
SLACK = 0.01
CLOCK = SystemClock()
LOGGER = "bot.reply.shared_pacing"

MakePacer = Callable[..., Awaitable[ChatPacer]]


def update() -> Priority:
    return Priority.UPDATE


@pytest.fixture
async def make_pacer(redis_url: str, redis: Redis) -> AsyncIterator[MakePacer]:
    """A pacer on its own Redis client, as each replica has (``url`` points it elsewhere)."""
    clients: list[Redis] = []

    async def make(per_second: float = 1000.0, *, url: str = redis_url, **options: float) -> ChatPacer:
        clients.append(client := Redis.from_url(url))
        book = SharedSlots(RedisRateLimiter(client, bot_id=BOT_ID), CLOCK, **options)
        return ChatPacer(CLOCK, per_second, book=book)

    yield make
    for client in clients:
        await client.aclose(close_connection_pool=True)


async def slots_for(pacer: ChatPacer, chats: Callable[[], int], interval: float, seconds: float) -> list[float]:
    """Take slots in a loop for ``seconds``; return when each was granted."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await pacer.slot(chats(), interval, update)
        times.append(time.monotonic())
    return times


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(times))]


async def test_replicas_share_a_chats_interval(make_pacer: MakePacer) -> None:
    """Two replicas racing in one chat never go closer together than the chat's interval."""
    a, b = await make_pacer(), await make_pacer()
    start = time.monotonic()
    runs = await asyncio.gather(*(slots_for(p, lambda: 5, 0.05, 0.4) for p in (a, b, a, b)))
    elapsed = time.monotonic() - start
    times = [t for run in runs for t in run]
    # Redis books the slots a period apart; when each caller resumes varies by a round trip
    assert min(gaps(times)) >= 0.05 - 2 * SLACK
    assert 4 <= len(times) <= 1 + elapsed / 0.05 + 1
    assert all(runs[:2])  # both replicas got some of the chat's slots


async def test_replicas_share_the_bot_budget(make_pacer: MakePacer) -> None:
    """Across chats, two replicas together make at most TELEGRAM_MAX_OPS_PER_SECOND operations in
    any second, streaming edits leaving a third of them unused for final texts."""
    a, b = await make_pacer(per_second=6), await make_pacer(per_second=6)  # edits: 4 a second
    chats = itertools.count(1000).__next__
    runs = await asyncio.gather(*(slots_for(p, chats, 0.05, 1.2) for p in (a, b, a, b)))
    times = sorted(t for run in runs for t in run)
    assert 8 <= len(times) <= 12
    # when each caller resumes lags its grant by a round trip: allow that much
    assert all(later - earlier >= 1.0 - SLACK for earlier, later in zip(times, times[4:], strict=False))
    assert all(runs[:2])  # both replicas got some


async def test_a_block_holds_the_chat_on_every_replica(make_pacer: MakePacer) -> None:
    """A 429 met by one replica holds the chat for retry_after on the other; other chats go on."""
    a, b = await make_pacer(), await make_pacer()
    start = time.monotonic()
    await a.block(9, 0.3)
    await b.slot(10, 0.01, update)
    assert time.monotonic() - start < 0.1
    await b.slot(9, 0.01, update)
    assert time.monotonic() - start >= 0.3 - SLACK


async def test_live_replies_on_two_replicas_honour_one_429(make_pacer: MakePacer) -> None:
    """A reply refused with retry_after on one replica keeps a reply in the same chat on another waiting."""
    sent: list[tuple[str, float]] = []

    class Target:
        chat_id = 7

        def __init__(self, refusals: int) -> None:
            self.refusals = refusals

        async def send(self, chunk: Chunk) -> int:
            if self.refusals:
                self.refusals -= 1
                raise RateLimited(0.3)
            sent.append((chunk.text, time.monotonic()))
            return len(sent)

        async def edit(self, message_id: int, chunk: Chunk) -> None: ...
        async def delete(self, message_id: int) -> None: ...
        async def typing(self) -> None: ...

    first = LiveReply(Target(refusals=1), await make_pacer(), interval=0.01, clock=CLOCK)
    start = time.monotonic()
    first.append("a")
    await asyncio.sleep(0.05)  # refused by now, the chat held on Redis
    second = LiveReply(Target(refusals=0), await make_pacer(), interval=0.01, clock=CLOCK)
    second.append("b")
    await asyncio.gather(first.finish(), second.finish())
    assert sorted(text for text, _ in sent) == ["a", "b"]
    assert min(at for _, at in sent) - start >= 0.3 - SLACK


async def test_one_round_trip_per_operation(make_pacer: MakePacer, redis: Redis) -> None:
    """Each operation asks Redis for its chat's slot and the bot's in one call (the booking is
    the grant: nothing more to write afterwards); Redis is not asked about a chat this replica
    itself holds (so a streaming edit never makes a refused call)."""
    pacer = await make_pacer()
    await pacer.slot(1, 0.01, update)  # loads the scripts
    await asyncio.sleep(0.01)  # and lets its bot-wide slot pass
    await redis.config_resetstat()
    for _ in range(3):
        await pacer.slot(2, 0.05, update)
    stats = await redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 3


async def test_an_operation_ahead_of_every_waiter_takes_one_round_trip(
    make_pacer: MakePacer, redis: Redis
) -> None:
    """A status line starved by the window waits here; a streaming edit, which goes before it,
    still books its chat and bot-wide slots in one call instead of queueing behind it."""
    pacer = await make_pacer(per_second=3)  # status lines: while fewer than one is in the window
    await pacer.slot(1, 0.01, lambda: Priority.STATUS)
    starved = asyncio.get_running_loop().create_task(pacer.slot(2, 0.01, lambda: Priority.STATUS))
    await asyncio.sleep(0.4)  # past the 1/3 s kept between operations that can wait
    assert not starved.done()
    await redis.config_resetstat()
    await pacer.slot(3, 0.01, update)
    stats = await redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    await starved


async def test_the_most_urgent_local_waiter_gets_the_next_bot_slot(make_pacer: MakePacer) -> None:
    """Within one replica, a final answer goes before a streaming edit, and that before a queue notice."""
    pacer = await make_pacer(per_second=3)  # streaming edits and notices may fill two of three
    for chat in (100, 101):
        await pacer.slot(chat, 0.01, update)
    order: list[str] = []

    async def take(chat: int, priority: Priority) -> None:
        await pacer.slot(chat, 0.01, lambda: priority)
        order.append(priority.name)

    await asyncio.gather(take(1, Priority.STATUS), take(2, Priority.UPDATE), take(3, Priority.FINAL))
    assert order == ["FINAL", "UPDATE", "STATUS"]


async def test_unreachable_redis_falls_back_to_local_pacing(
    make_pacer: MakePacer, caplog: pytest.LogCaptureFixture
) -> None:
    """With nothing listening on Redis's port, replies are paced locally, with one warning."""
    pacer = await make_pacer(url=f"redis://127.0.0.1:{_free_port()}")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        start = time.monotonic()
        times = await slots_for(pacer, lambda: 3, 0.05, 0.2)
        await pacer.block(3, 0.2)
        await pacer.slot(3, 0.05, update)
    assert min(gaps(times)) >= 0.05 - SLACK
    assert time.monotonic() - times[-1] >= 0.2 - SLACK
    assert times[0] - start < 0.1
    assert [r.levelname for r in caplog.records] == ["WARNING"]


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: a hung Redis. Yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_hung_redis_costs_one_timeout_then_paces_locally(
    make_pacer: MakePacer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that never answers delays the first operation by the timeout only, then not at all."""
    async with silent_server() as port:
        pacer = await make_pacer(url=f"redis://127.0.0.1:{port}", timeout=0.05, recheck=10.0)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            start = time.monotonic()
            await pacer.slot(4, 0.01, update)
            first = time.monotonic() - start
            await pacer.slot(5, 0.01, update)
    assert 0.05 - SLACK <= first < 0.2
    assert time.monotonic() - start - first < 0.05
    assert [r.levelname for r in caplog.records] == ["WARNING"]


class Gate:
    """A TCP proxy to Redis that can be shut (connections cut and refused) and opened again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.open = True
        self._writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def shut(self) -> None:
        self.open = False
        for writer in self._writers:
            writer.close()
        self._writers.clear()


async def test_pacing_is_shared_again_once_redis_answers(
    make_pacer: MakePacer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After an outage the pacer goes back to Redis by itself, so other replicas see its blocks again."""
    gate = Gate(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    server = await asyncio.start_server(gate.handle, "127.0.0.1", 0)
    other = await make_pacer()
    try:
        pacer = await make_pacer(url=f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}", recheck=0.1)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await pacer.slot(6, 0.01, update)  # through the gate: shared
            gate.shut()
            await pacer.block(6, 0.3)  # held locally only: the other replica does not see it
            start = time.monotonic()
            await other.slot(6, 0.01, update)
            assert time.monotonic() - start < 0.1
            gate.open = True
            await asyncio.sleep(0.1)
            start = time.monotonic()
            await pacer.block(8, 0.3)  # Redis answers again: shared
            await other.slot(8, 0.01, update)
        assert time.monotonic() - start >= 0.3 - SLACK
        assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    finally:
        gate.shut()
        server.close()
        await server.wait_closed()
