"""The dispatcher on real Redis with a recording worker: order, exactly once, albums, takeover, shutdown.

Two dispatchers on two Redis clients stand for two replicas. Time is real but short (leases of
a few hundred milliseconds); tests wait for conditions, never for fixed periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.clock import SystemClock
from bot.cluster import turns
from bot.cluster.dispatcher import Dispatcher, Work
from bot.cluster.turns import Journal, Recovery, TurnRecord
from storage.mailbox import RedisMailbox

BOT_ID = 777
LEASE_MS = 300
_ids = itertools.count(1)


def update(chat: int, text: str = "hi", *, album: str | None = None, update_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": next(_ids), "date": 0, "text": text,
                               "chat": {"id": chat, "type": "private"}}
    if album:
        message["media_group_id"] = album
    return {"update_id": next(_ids) if update_id is None else update_id, "message": message}


Hook = Callable[[Journal, Work], Awaitable[None]]


@dataclass
class RecordingWorker:
    """Records every turn it handles and how many turns of one chat ran at once (in all replicas)."""

    name: str
    log: list[tuple[str, str, list[str]]]  # (replica, chat, texts) in the order turns started
    running: dict[str, int]
    overlaps: list[str]
    hooks: dict[str, Hook] = field(default_factory=dict)  # by text
    recovered: list[tuple[str, TurnRecord, Recovery]] = field(default_factory=list)
    urgents: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def process(self, work: Work) -> None:
        texts = [u["message"]["text"] for u in work.updates]
        self.log.append((self.name, work.route, texts))
        self.running[work.route] = self.running.get(work.route, 0) + 1
        if self.running[work.route] > 1:
            self.overlaps.append(work.route)
        try:
            journal = turns.current()
            assert journal is not None
            if hook := self.hooks.get(texts[0]):
                await hook(journal, work)
            await asyncio.sleep(0.005)
        finally:
            self.running[work.route] -= 1
            self.changed.set()

    async def recover(self, work: Work, record: TurnRecord, action: Recovery) -> None:
        self.recovered.append((work.updates[0]["message"]["text"], record, action))
        self.changed.set()

    async def urgent(self, update: Mapping[str, Any]) -> None:
        self.urgents.append(dict(update))
        self.changed.set()


@dataclass
class Cluster:
    redis_url: str
    log: list[tuple[str, str, list[str]]] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    replicas: list[tuple[Dispatcher, RecordingWorker, Redis]] = field(default_factory=list)

    async def replica(self, name: str, *, album_wait: float = 0.05) -> tuple[Dispatcher, RecordingWorker]:
        client = Redis.from_url(self.redis_url)
        worker = RecordingWorker(name, self.log, self.running, self.overlaps)
        mailbox = RedisMailbox(client, bot_id=BOT_ID, lease_ms=LEASE_MS)
        dispatcher = Dispatcher(mailbox, worker, SystemClock(), replica=name, album_wait=album_wait,
                                sweep_every=0.05)
        dispatcher.start()
        self.replicas.append((dispatcher, worker, client))
        return dispatcher, worker

    def texts(self, chat: int) -> list[str]:
        return [t for _, route, texts in self.log if route == str(chat) for t in texts]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - the predicate reads state other tasks change
                await asyncio.sleep(0.01)


@pytest.fixture
async def cluster(redis_url: str, redis: Redis) -> AsyncIterator[Cluster]:
    group = Cluster(redis_url)
    yield group
    for dispatcher, _, client in group.replicas:
        with contextlib.suppress(Exception):
            await dispatcher.stop(0.5)
        await client.aclose(close_connection_pool=True)


async def test_one_chats_turns_run_in_order_one_at_a_time(cluster: Cluster) -> None:
    """Five quick messages of one chat are handled in arrival order, never two at once."""
    dispatcher, _ = await cluster.replica("a")
    for i in range(5):
        assert await dispatcher.record(update(1, f"m{i}"))
    await cluster.wait(lambda: len(cluster.texts(1)) == 5)
    assert cluster.texts(1) == [f"m{i}" for i in range(5)]
    assert cluster.overlaps == []


async def test_a_slow_chat_does_not_hold_up_another(cluster: Cluster) -> None:
    """While one chat's turn is stuck, another chat's turns are handled."""
    dispatcher, worker = await cluster.replica("a")
    release = asyncio.Event()

    async def stuck(journal: Journal, work: Work) -> None:
        await release.wait()

    worker.hooks["slow"] = stuck
    await dispatcher.record(update(1, "slow"))
    await dispatcher.record(update(2, "quick"))
    await cluster.wait(lambda: cluster.texts(2) == ["quick"])
    release.set()
    await cluster.wait(lambda: cluster.running.get("1") == 0)


async def test_a_stop_is_handled_at_once_beside_the_chats_queue(cluster: Cluster) -> None:
    """/stop, the Stop button and Telegram's draft stop skip the mailbox: queued, they would wait
    for the very answer they are meant to stop. The turn they stop is still running meanwhile."""
    dispatcher, worker = await cluster.replica("a")
    release = asyncio.Event()

    async def stuck(journal: Journal, work: Work) -> None:
        await release.wait()

    worker.hooks["long answer"] = stuck
    await dispatcher.record(update(1, "long answer"))
    await cluster.wait(lambda: cluster.running.get("1") == 1)
    stops = [
        update(1, "/stop"),
        update(1, "/stop@yuanqi_bot"),
        {"update_id": 900, "callback_query": {"id": "q", "data": "stop", "message": {"chat": {"id": 1}}}},
        {"update_id": 901, "stopped_message_generation": {"chat": {"id": 1}, "draft_id": 5}},
    ]
    for stop in stops:
        assert await dispatcher.record(stop)
    assert worker.urgents == stops
    assert cluster.running.get("1") == 1 and cluster.texts(1) == ["long answer"]
    release.set()
    await cluster.wait(lambda: cluster.running.get("1") == 0)
    assert cluster.texts(1) == ["long answer"]  # none of them was queued as a turn


async def test_duplicate_deliveries_are_handled_once(cluster: Cluster) -> None:
    """The same update_id recorded twice, by two replicas, is handled once."""
    a, _ = await cluster.replica("a")
    b, _ = await cluster.replica("b")
    first = update(1, "once")
    assert await a.record(first) is True
    assert await b.record(first) is False
    await cluster.wait(lambda: cluster.texts(1) == ["once"])
    await asyncio.sleep(0.05)
    assert cluster.texts(1) == ["once"]


async def test_two_replicas_keep_one_chats_order(cluster: Cluster) -> None:
    """Updates of one chat spread over two replicas are handled in order, exactly once, one at a time."""
    replicas = [await cluster.replica("a"), await cluster.replica("b")]
    for i in range(12):
        await replicas[i % 2][0].record(update(1, f"m{i}"))
    await cluster.wait(lambda: len(cluster.texts(1)) == 12)
    assert cluster.texts(1) == [f"m{i}" for i in range(12)]
    assert cluster.overlaps == []


async def test_album_parts_from_two_replicas_become_one_turn(cluster: Cluster) -> None:
    """An album's parts, received by different replicas, are handed over together once it is quiet."""
    a, _ = await cluster.replica("a", album_wait=0.2)
    b, _ = await cluster.replica("b", album_wait=0.2)
    await a.record(update(1, "p1", album="G"))
    await b.record(update(1, "p2", album="G"))
    await a.record(update(1, "p3", album="G"))
    await b.record(update(1, "after"))
    await cluster.wait(lambda: len(cluster.log) == 2)
    assert [texts for _, _, texts in cluster.log] == [["p1", "p2", "p3"], ["after"]]


async def test_a_dead_replicas_chat_is_taken_over_and_its_cut_answer_marked(cluster: Cluster) -> None:
    """When the holder dies mid-answer, another replica marks the shown part interrupted and goes on."""
    a, worker_a = await cluster.replica("a")
    started = asyncio.Event()

    async def dies_mid_answer(journal: Journal, work: Work) -> None:
        await journal.shown([501], "half an ans", False)
        started.set()
        await asyncio.Event().wait()  # hangs until the replica is "killed"

    worker_a.hooks["question"] = dies_mid_answer
    await a.record(update(1, "question"))
    await a.record(update(1, "next"))
    await started.wait()
    await kill(a)
    _, worker_b = await cluster.replica("b")
    await cluster.wait(lambda: cluster.texts(1)[-1:] == ["next"])
    [(text, record, action)] = worker_b.recovered
    assert (text, action, record.message_ids, record.text) == ("question", Recovery.MARK, (501,), "half an ans")


async def test_a_turn_that_showed_nothing_is_run_again_after_a_crash(cluster: Cluster) -> None:
    """A turn cut before any answer text was shown is retried by the replica that takes over."""
    a, worker_a = await cluster.replica("a")
    started = asyncio.Event()

    async def dies_waiting(journal: Journal, work: Work) -> None:
        await journal.shown([601], "", False)  # only a queue notice was shown
        started.set()
        await asyncio.Event().wait()

    worker_a.hooks["question"] = dies_waiting
    await a.record(update(1, "question"))
    await started.wait()
    await kill(a)
    _, worker_b = await cluster.replica("b")
    await cluster.wait(lambda: [n for n, _, t in cluster.log if t == ["question"]] == ["a", "b"])
    [(_, record, action)] = worker_b.recovered
    assert (action, record.message_ids) == (Recovery.RETRY, (601,))


async def test_shutdown_lets_turns_finish_and_leaves_the_rest_in_redis(cluster: Cluster) -> None:
    """stop() waits for the turn in flight, starts no new one, and another replica answers the rest."""
    a, worker_a = await cluster.replica("a")
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(journal: Journal, work: Work) -> None:
        started.set()
        await release.wait()

    worker_a.hooks["first"] = slow
    await a.record(update(1, "first"))
    await a.record(update(1, "second"))
    await started.wait()
    stopping = asyncio.create_task(a.stop(5.0))
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    assert cluster.texts(1) == ["first"]
    await cluster.replica("b")
    await cluster.wait(lambda: cluster.texts(1) == ["first", "second"])


async def test_shutdown_marks_what_the_grace_period_cut(cluster: Cluster) -> None:
    """A turn still streaming when the grace period ends is marked interrupted by its own replica."""
    a, worker_a = await cluster.replica("a")
    started = asyncio.Event()

    async def endless(journal: Journal, work: Work) -> None:
        await journal.shown([701], "partial", False)
        started.set()
        await asyncio.Event().wait()

    worker_a.hooks["long"] = endless
    await a.record(update(1, "long"))
    await started.wait()
    await a.stop(0.05)
    [(text, record, action)] = worker_a.recovered
    assert (text, action, record.text) == ("long", Recovery.MARK, "partial")
    await cluster.replica("b")
    await asyncio.sleep(0.1)
    assert cluster.texts(1) == ["long"]  # marked and done: not answered a second time


async def test_a_deferred_turn_is_left_for_the_next_replica(cluster: Cluster) -> None:
    """A turn that defers (shutdown before its agent call) stays in Redis and runs again elsewhere."""
    a, worker_a = await cluster.replica("a")

    async def defer(journal: Journal, work: Work) -> None:
        a.stopping = True  # as stop() would: no new agent call may start
        await journal.defer()

    worker_a.hooks["ask"] = defer
    await a.record(update(1, "ask"))
    await cluster.wait(lambda: cluster.texts(1) == ["ask"] and not a.active)
    del worker_a.hooks["ask"]
    _, worker_b = await cluster.replica("b")
    await cluster.wait(lambda: cluster.texts(1) == ["ask", "ask"])
    [(_, record, action)] = worker_b.recovered
    assert (action, record.deferred, record.attempt) == (Recovery.RETRY, True, 1)


async def test_a_replica_that_lost_its_lease_stops_and_commits_nothing(cluster: Cluster, redis: Redis) -> None:
    """If another replica owns the chat now, the old holder's turn is cancelled and not committed."""
    a, worker_a = await cluster.replica("a")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def paused(journal: Journal, work: Work) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    worker_a.hooks["q"] = paused
    await a.record(update(1, "q"))
    await started.wait()
    await redis.set(f"yq:{BOT_ID}:{{c:1}}:lease", "someone-else")
    await asyncio.wait_for(cancelled.wait(), 2)
    assert await redis.llen(f"yq:{BOT_ID}:{{c:1}}:mail") == 1


async def test_every_lease_in_flight_is_kept_and_a_lost_one_stops_only_its_chat(
    cluster: Cluster, redis: Redis
) -> None:
    """One keeper renews the leases of all the chats a replica is serving (together, in one
    round trip a tick): three turns outlast many lease periods, and when one chat's lease goes to
    another replica only that chat's turn is cancelled; the others finish and commit."""
    a, worker_a = await cluster.replica("a")
    release = asyncio.Event()
    cancelled: list[str] = []

    async def paused(journal: Journal, work: Work) -> None:
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.append(work.route)
            raise

    for chat in (1, 2, 3):
        worker_a.hooks[f"q{chat}"] = paused
        await a.record(update(chat, f"q{chat}"))
    await cluster.wait(lambda: len(cluster.running) == 3)
    await asyncio.sleep(4 * LEASE_MS / 1000)  # four lease periods: only renewals keep them
    for chat in (1, 2, 3):
        assert (await redis.get(f"yq:{BOT_ID}:{{c:{chat}}}:lease") or b"").startswith(b"a:")
    await redis.set(f"yq:{BOT_ID}:{{c:2}}:lease", "someone-else")
    await cluster.wait(lambda: cancelled == ["2"])
    release.set()
    async with asyncio.timeout(5):
        # until both turns commit (leave their mailboxes)
        while await redis.llen(f"yq:{BOT_ID}:{{c:1}}:mail") + await redis.llen(f"yq:{BOT_ID}:{{c:3}}:mail"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert cancelled == ["2"]
    assert await redis.llen(f"yq:{BOT_ID}:{{c:2}}:mail") == 1  # not committed: the new holder's


async def test_an_unreadable_entry_does_not_block_the_chat(cluster: Cluster, redis: Redis) -> None:
    """A mailbox entry that is not JSON is dropped with a log line; the next update is handled."""
    a, _ = await cluster.replica("a")
    await redis.rpush(f"yq:{BOT_ID}:{{c:1}}:mail", "123 {not json")
    await redis.zadd(f"yq:{BOT_ID}:{{pending}}", {"1": 1})
    await a.record(update(1, "fine"))
    await cluster.wait(lambda: cluster.texts(1) == ["fine"])


async def test_updates_without_an_id_are_refused(cluster: Cluster) -> None:
    """An update without a usable update_id cannot be deduplicated, so it is not recorded."""
    a, _ = await cluster.replica("a")
    assert await a.record({"message": update(1)["message"]}) is False


async def kill(dispatcher: Dispatcher) -> None:
    """Stop a replica the way kill -9 would: its tasks vanish, nothing is released or marked."""
    for task in [*dispatcher._drains.values(), dispatcher._sweeper, dispatcher._keeper]:  # a crash
        if task is not None:
            task.cancel()
    await asyncio.sleep(0)
