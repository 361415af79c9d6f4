"""Stops across replicas on a real Redis: a stop requested anywhere reaches the turn it names, only it.

Two ``StopBoard`` objects on two clients stand for two replicas. A lost subscription is simulated
with ``CLIENT KILL TYPE pubsub`` from a third client; the listener's backoff sleeps on a manual
clock, so the test decides when it resubscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from bot.cluster.stops import BACKOFF, StopBoard, StopSignals
from storage import StorageError
from storage.keys import chat_key, stop_channel
from storage.signals import RedisStopSignals
from tests.conftest import CountingConnection, ManualClock, eventually, pubsub_clients, settle

BOT = 41
CHAT = "-1001234"
OTHER_CHAT = "555"
MARKER_CHAT = "777"


class SleepClock(ManualClock):
    """A manual clock that remembers what was slept and lets the test wait until someone sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.sleeping.set()
        await super().sleep(seconds)


class PubSubOnly:
    """Real signals whose stop keys are never read: whatever a board learns came by pub/sub."""

    def __init__(self, signals: RedisStopSignals) -> None:
        self._signals = signals

    async def request(self, route: str, turn: int) -> None:
        await self._signals.request(route, turn)

    async def requested(self, route: str) -> int | None:
        return None

    def listen(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[tuple[str, int]]]:
        return self._signals.listen()


async def gone(redis: Redis) -> None:
    async def none_left() -> bool:
        return await pubsub_clients(redis) == 0

    await eventually(none_left)


Replica = Callable[..., StopBoard]


@pytest.fixture(name="replica")
async def _replica(redis_url: str, redis: Redis) -> AsyncIterator[Replica]:
    """Make a started StopBoard on a client of its own: one replica."""
    boards: list[StopBoard] = []
    clients: list[Redis] = []

    def make(clock: ManualClock | None = None, *, pubsub_only: bool = False, start: bool = True) -> StopBoard:
        client = Redis.from_url(redis_url)
        clients.append(client)
        signals: StopSignals = RedisStopSignals(client, bot_id=BOT)
        if pubsub_only:
            signals = PubSubOnly(RedisStopSignals(client, bot_id=BOT))
        board = StopBoard(signals, clock or ManualClock())
        boards.append(board)
        if start:
            board.start()
        return board

    yield make
    for board in boards:
        await board.close()
    for client in clients:
        await client.aclose(close_connection_pool=True)


async def subscribed(*boards: StopBoard) -> None:
    for board in boards:
        await asyncio.wait_for(board.wait_subscribed(), 2)


# --- RedisStopSignals -------------------------------------------------------------------------


async def test_request_leaves_the_turn_in_the_chats_stop_key(redis: Redis) -> None:
    """request sets the chat's stop key (sharing the chat's hash tag) for ttl_ms; requested reads it."""
    signals = RedisStopSignals(redis, bot_id=BOT, ttl_ms=60_000)
    assert await signals.requested(CHAT) is None
    await signals.request(CHAT, 17)
    assert await signals.requested(CHAT) == 17
    assert await signals.requested(OTHER_CHAT) is None
    key = chat_key(BOT, CHAT, "stop")
    assert key == f"yq:{BOT}:{{c:{CHAT}}}:stop"
    assert 59_000 < await redis.pttl(key) <= 60_000
    await signals.request(CHAT, 18)
    assert await signals.requested(CHAT) == 18

    short = RedisStopSignals(redis, bot_id=BOT, ttl_ms=1)
    await short.request(OTHER_CHAT, 3)
    await asyncio.sleep(0.01)  # ten times the TTL
    assert await short.requested(OTHER_CHAT) is None


async def test_request_is_one_round_trip(counting: tuple[Redis, type[CountingConnection]]) -> None:
    client, counter = counting
    await RedisStopSignals(client, bot_id=BOT).request(CHAT, 1)
    assert counter.writes == 1


async def test_listen_yields_well_formed_stops_and_closes_its_connection(
    redis: Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    """Malformed messages are logged and skipped; routes may hold colons; leaving unsubscribes."""
    signals = RedisStopSignals(redis, bot_id=BOT)
    channel = stop_channel(BOT)
    async with signals.listen() as stops:
        assert await pubsub_clients(redis) == 1  # subscribed on entry: nothing published now is lost
        for junk in ("junk", "chat:x", ":5", "chat:-3"):
            await redis.publish(channel, junk)
        await redis.publish(stop_channel(BOT + 1), f"{CHAT}:1")  # another bot's channel
        await signals.request(CHAT, 42)
        await signals.request("a:b", 7)
        assert await asyncio.wait_for(anext(stops), 2) == (CHAT, 42)
        assert await asyncio.wait_for(anext(stops), 2) == ("a:b", 7)
    assert sum("malformed stop" in r.getMessage() for r in caplog.records) == 4
    await gone(redis)


async def test_listen_raises_storage_error_when_the_connection_is_lost(redis: Redis) -> None:
    signals = RedisStopSignals(redis, bot_id=BOT)
    async with signals.listen() as stops:
        await redis.client_kill_filter(_type="pubsub")
        with pytest.raises(StorageError):
            await asyncio.wait_for(anext(stops), 2)
    await gone(redis)


async def test_listen_pings_a_quiet_line_and_gives_up_on_a_silent_one(redis: Redis) -> None:
    """An idle subscription stays up (its pings are answered); one whose pings go unanswered raises."""
    signals = RedisStopSignals(redis, bot_id=BOT, ping_every=0.05)
    async with signals.listen() as stops:
        waiting = asyncio.ensure_future(anext(stops))
        await asyncio.sleep(0.3)  # several quiet periods, each ended by an answered ping
        assert not waiting.done()
        await signals.request(CHAT, 1)
        assert await asyncio.wait_for(waiting, 2) == (CHAT, 1)
        await redis.client_pause(300, all=True)  # the server stops answering
        with pytest.raises(StorageError):
            await asyncio.wait_for(anext(stops), 2)


async def test_cancelled_listener_closes_its_connection(redis: Redis) -> None:
    signals = RedisStopSignals(redis, bot_id=BOT)
    entered = asyncio.Event()

    async def listen() -> None:
        async with signals.listen() as stops:
            entered.set()
            async for _ in stops:
                pass

    task = asyncio.create_task(listen())
    await asyncio.wait_for(entered.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await gone(redis)


# --- StopBoard across replicas ----------------------------------------------------------------


async def test_stop_on_one_replica_reaches_the_turn_on_another(replica: Replica) -> None:
    """Only pub/sub can tell A here (its key checks see nothing): the message arrives at once."""
    a, b = replica(pubsub_only=True), replica()
    await subscribed(a, b)
    with a.watch(CHAT, 10) as stop:
        await b.request(CHAT, 10)
        await asyncio.wait_for(stop.wait(), 2)
    assert a.watching == 0


async def test_stop_for_an_older_turn_does_not_stop_the_newer_one(replica: Replica) -> None:
    a, b = replica(), replica()
    await subscribed(a)
    with a.watch(CHAT, 10) as current, a.watch(MARKER_CHAT, 1) as marker:
        await b.request(CHAT, 9)
        await b.request(MARKER_CHAT, 1)  # one channel, in order: once this is in, so is the older stop
        await asyncio.wait_for(marker.wait(), 2)
        assert not current.is_set()
        await b.request(CHAT, 10)
        await asyncio.wait_for(current.wait(), 2)


async def test_other_chats_are_unaffected(replica: Replica) -> None:
    a, b = replica(), replica()
    await subscribed(a)
    with a.watch(CHAT, 10) as stopped, a.watch(OTHER_CHAT, 10) as other:
        await b.request(CHAT, 10)
        await asyncio.wait_for(stopped.wait(), 2)
        await b.request(MARKER_CHAT, 10)  # unwatched: nothing happens
        with a.watch(MARKER_CHAT, 2) as marker:
            await b.request(MARKER_CHAT, 2)
            await asyncio.wait_for(marker.wait(), 2)
        assert not other.is_set()


async def test_stop_requested_before_the_watch_is_seen(replica: Replica) -> None:
    """A board that is not even listening finds the stop when the watch begins (the key check)."""
    a, b = replica(start=False), replica(start=False)
    await b.request(CHAT, 5)
    with a.watch(CHAT, 5) as stop:
        await asyncio.wait_for(stop.wait(), 2)


async def test_stop_published_while_the_subscription_was_down_is_seen_after_resubscribing(
    replica: Replica, redis: Redis,
) -> None:
    clock = SleepClock()
    a, b = replica(clock), replica()
    await subscribed(a, b)
    with a.watch(CHAT, 10) as stop:
        await redis.client_kill_filter(_type="pubsub")
        await asyncio.wait_for(clock.sleeping.wait(), 2)  # A noticed, and waits to resubscribe
        assert not a.subscribed
        await b.request(CHAT, 10)  # nobody hears the message: A is not subscribed
        await settle()
        assert not stop.is_set()
        await clock.advance(BACKOFF[0])
        await asyncio.wait_for(stop.wait(), 2)  # the check after resubscribing found the key
    assert clock.slept == [BACKOFF[0]]
    assert a.subscribed


async def test_close_leaves_no_task_and_no_subscription(replica: Replica, redis: Redis) -> None:
    a = replica()
    await subscribed(a)
    with a.watch(CHAT, 1):  # its key check may still be pending
        await a.close()
    assert not a.subscribed
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
    await gone(redis)


class FailingSignals:
    """Signals whose subscription always fails: first with Redis trouble, then with a bug."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.attempts = 0

    async def request(self, route: str, turn: int) -> None:
        raise StorageError("down")

    async def requested(self, route: str) -> int | None:
        return None

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[AsyncIterator[tuple[str, int]]]:
        self.attempts += 1
        raise self.errors[min(self.attempts, len(self.errors)) - 1]
        yield  # pragma: no cover


async def test_listener_backs_off_and_survives_unexpected_errors(caplog: pytest.LogCaptureFixture) -> None:
    clock = SleepClock()
    signals = FailingSignals([StorageError("refused"), RuntimeError("bug"), StorageError("refused")])
    board = StopBoard(signals, clock)
    caplog.set_level(logging.WARNING)
    board.start()
    await clock.advance(0.5 + 1 + 2 + 4 + 4 + 4)
    assert clock.slept == [0.5, 1, 2, 4, 4, 4, 4]
    assert signals.attempts == 7
    assert any(r.exc_info and "bug" in str(r.exc_info[1]) for r in caplog.records)
    with pytest.raises(StorageError):
        await board.request(CHAT, 1)  # the caller learns the stop was not sent
    await board.close()
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
