"""Slot waiters woken by announced releases, on a real Redis: at once, only when it may be their turn.

Each replica is a client of its own with its semaphore and ``SlotBoard``. Time is a manual clock
that the tests never move unless they say so: a waiter that gets a slot without the clock
moving was woken by a release it heard, not by a poll timer. A lost subscription is simulated
with ``CLIENT KILL TYPE pubsub``. Polls are counted by wrapping ``try_acquire``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from bot.agent.slots import ClusterSlots
from bot.agent.wakeups import SlotBoard
from storage.semaphore import RedisSemaphore, Ticket, semaphore_key
from tests.conftest import ManualClock, eventually, settle

BOT = 43
HEARTBEAT = 5.0  # the default waiter_ttl_ms (15 s) over three


class CountingSemaphore(RedisSemaphore):
    """Counts each holder's polls."""

    def __init__(self, redis: Redis, limit: int) -> None:
        super().__init__(redis, bot_id=BOT, limit=limit)
        self.polls: Counter[str] = Counter()
        self.renewals: list[list[str]] = []  # the holders of each renew_all call

    async def try_acquire(self, holder: str) -> Ticket:
        self.polls[holder] += 1
        return await super().try_acquire(holder)

    async def renew_all(self, holders: Sequence[str]) -> list[bool]:
        kept = await super().renew_all(holders)
        self.renewals.append(sorted(holders))
        return kept


@dataclass
class Replica:
    sem: CountingSemaphore
    board: SlotBoard
    clock: ManualClock

    def waiter(self, holder: str) -> Waiting:
        return Waiting(self, holder)


class Waiting:
    """One acquire in a task; ``queued`` is set once it was told its place."""

    def __init__(self, replica: Replica, holder: str) -> None:
        self.replica = replica
        self.holder = holder
        self.queued = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _on_wait(self, ahead: int) -> None:
        self.queued.set()

    async def _run(self) -> None:
        with self.replica.board.waiter() as waiter:
            await self.replica.sem.acquire(self.holder, on_wait=self._on_wait, pause=waiter.pause)

    @property
    def polls(self) -> int:
        return self.replica.sem.polls[self.holder]

    async def parked(self) -> None:
        """Queued, and paused: neither polling nor about to."""
        await asyncio.wait_for(self.queued.wait(), 2)
        await quiet()


MakeReplica = Callable[..., Awaitable[Replica]]


@pytest.fixture(name="replica")
async def _replica(redis_url: str, redis: Redis) -> AsyncIterator[MakeReplica]:
    """A replica: a client of its own, its semaphore, its board (started and subscribed unless told)."""
    made: list[tuple[Redis, SlotBoard]] = []

    async def make(
        limit: int = 1, *, clock: ManualClock | None = None, start: bool = True, poll: float = 0.2,
        backoff: tuple[float, ...] = (0.5,),
    ) -> Replica:
        client = Redis.from_url(redis_url)
        clock = clock or ManualClock()
        sem = CountingSemaphore(client, limit)
        board = SlotBoard(sem, clock, poll=poll, backoff=backoff)
        made.append((client, board))
        if start:
            board.start()
            await asyncio.wait_for(board.wait_subscribed(), 2)
        return Replica(sem, board, clock)

    yield make
    for client, board in made:
        await board.close()
        await client.aclose(close_connection_pool=True)


async def quiet() -> None:
    """Real time for whatever Redis round trips are under way (a poll, a message) to finish."""
    await asyncio.sleep(0.05)


async def stop(*waiting: Waiting) -> None:
    for w in waiting:
        w.task.cancel()
    await asyncio.gather(*(w.task for w in waiting), return_exceptions=True)


async def heard(board: SlotBoard, releases: int) -> None:
    for _ in range(200):
        if board.heard >= releases:
            await quiet()  # and for a wrongly woken waiter to have polled
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"heard {board.heard} releases, not {releases}")


async def test_a_release_wakes_the_head_waiter_at_once(replica: MakeReplica) -> None:
    """The next in line gets a freed slot with the clock standing still: the release woke it."""
    one = await replica()
    assert (await one.sem.try_acquire("h")).acquired
    w = one.waiter("w")
    await w.parked()
    assert w.polls == 1
    await one.sem.release("h")
    await asyncio.wait_for(w.task, 2)
    assert w.polls == 2
    assert one.clock.now() == 1000.0


async def test_a_waiter_three_places_back_is_woken_by_the_third_release(replica: MakeReplica) -> None:
    """Told two are ahead, a waiter is left alone by the first two releases and polls after the third."""
    one = await replica(limit=3)
    for h in ("h0", "h1", "h2"):
        assert (await one.sem.try_acquire(h)).acquired
    for i, q in enumerate(("q0", "q1")):  # queued by a replica that does not poll during the test
        assert await one.sem.try_acquire(q) == Ticket(False, i)
    w = one.waiter("w")
    await w.parked()
    await one.sem.release("h0")
    await heard(one.board, 1)
    await one.sem.release("h1")
    await heard(one.board, 2)
    assert (w.polls, w.task.done()) == (1, False)
    await one.sem.release("h2")  # three free slots, two waiters ahead: its turn
    await asyncio.wait_for(w.task, 2)
    assert w.polls == 2
    assert one.clock.now() == 1000.0


async def test_waiters_otherwise_poll_once_a_heartbeat(replica: MakeReplica) -> None:
    """Subscribed, a waiter with nothing heard polls every heartbeat, which keeps its place alive."""
    one = await replica()
    await one.sem.try_acquire("h")
    w = one.waiter("w")
    await w.parked()
    await one.clock.advance(HEARTBEAT - 0.01)
    await quiet()
    assert w.polls == 1
    await one.clock.advance(0.01)
    await quiet()
    assert w.polls == 2
    await one.clock.advance(HEARTBEAT)
    await quiet()
    assert (w.polls, await one.sem.waiting()) == (3, 1)
    await stop(w)


async def test_a_lapsed_lease_is_noticed_by_the_heartbeat_poll(redis: Redis, replica: MakeReplica) -> None:
    """A crashed holder announces nothing; its slot goes to the waiter at its next heartbeat."""
    one = await replica()
    crashed = RedisSemaphore(redis, bot_id=BOT, limit=1)
    assert (await crashed.try_acquire("crashed")).acquired
    w = one.waiter("w")
    await w.parked()
    crashed.lease_ms = 0  # its last renewal sets the expiry to "now": lapsed from here on
    assert await crashed.renew("crashed")
    await quiet()
    assert (w.polls, w.task.done(), one.board.heard) == (1, False, 0)
    await one.clock.advance(HEARTBEAT)
    await asyncio.wait_for(w.task, 2)
    assert w.polls == 2


async def test_unsubscribed_waiters_poll_fast(replica: MakeReplica) -> None:
    """Before the board is subscribed, waiters poll as often as before releases were announced."""
    one = await replica(start=False)
    await one.sem.try_acquire("h")
    w0, w1 = one.waiter("w0"), one.waiter("w1")
    await w0.parked()
    await w1.parked()
    await one.clock.advance(0.2)  # the head polls every 0.2 s, the next every 0.4 s
    await quiet()
    assert (w0.polls, w1.polls) == (2, 1)
    await one.clock.advance(0.2)
    await quiet()
    assert (w0.polls, w1.polls) == (3, 2)
    await one.sem.release("h")  # nobody listens: heard only by the next fast poll
    await quiet()
    assert not w0.task.done()
    await one.clock.advance(0.2)
    await asyncio.wait_for(w0.task, 2)
    await stop(w1)


async def test_a_lost_subscription_means_fast_polling_and_a_regained_one_a_poll_for_everyone(
    redis: Redis, replica: MakeReplica,
) -> None:
    """Losing the subscription wakes every waiter into fast polling; getting it back wakes each
    once more (a release may have been missed), after which they pause a heartbeat again."""
    one = await replica(poll=1.0, backoff=(0.01,))  # fast polls of 1, 2, 3 s; resubscribing after 0.01 s
    await one.sem.try_acquire("h")
    waiters = [one.waiter(f"w{i}") for i in range(3)]
    for w in waiters:
        await w.parked()
    assert [w.polls for w in waiters] == [1, 1, 1]

    await redis.client_kill_filter(_type="pubsub")
    for _ in range(200):
        if not one.board.subscribed:
            break
        await asyncio.sleep(0.01)
    await quiet()
    assert [w.polls for w in waiters] == [2, 2, 2]  # each woken once, now pausing 1, 2, 3 s

    await one.clock.advance(0.01)  # the listener's backoff
    await asyncio.wait_for(one.board.wait_subscribed(), 2)
    await quiet()
    assert [w.polls for w in waiters] == [3, 3, 3]

    await one.clock.advance(3.0)  # fast polling would have asked again by now: they pause a heartbeat
    await quiet()
    assert [w.polls for w in waiters] == [3, 3, 3]
    await one.clock.advance(HEARTBEAT)
    await quiet()
    assert [w.polls for w in waiters] == [4, 4, 4]
    await stop(*waiters)


async def test_cancelling_a_woken_waiter_leaves_the_queue_and_the_board(replica: MakeReplica) -> None:
    one = await replica()
    await one.sem.try_acquire("h")
    w = one.waiter("w")
    await w.parked()
    assert (await one.sem.waiting(), one.board.waiting) == (1, 1)
    w.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w.task
    assert (await one.sem.waiting(), one.board.waiting) == (0, 0)


async def test_a_waiter_leaving_wakes_the_one_behind(replica: MakeReplica) -> None:
    """A place freed ahead is announced like a slot: the waiter behind a quitter polls and takes
    a slot that the quitter was about to take."""
    one = await replica(limit=2)
    await one.sem.try_acquire("h0")
    await one.sem.try_acquire("h1")
    assert await one.sem.try_acquire("quitter") == Ticket(False, 0)
    w = one.waiter("w")
    await w.parked()
    await one.sem.release("h0")  # the quitter's turn; w, one ahead, is left alone
    await heard(one.board, 1)
    assert (w.polls, w.task.done()) == (1, False)
    await one.sem.release("quitter")  # gives up before taking it
    await asyncio.wait_for(w.task, 2)
    assert one.clock.now() == 1000.0


async def test_two_replicas_serve_their_waiters_first_come_first_served(replica: MakeReplica) -> None:
    """Waiters queued alternately on two replicas get the one slot in arrival order, each woken by
    the previous one's release heard on its own board: no clock moves."""
    clock = ManualClock()
    a, b = await replica(clock=clock), await replica(clock=clock)
    slots = {
        id(r): ClusterSlots(r.sem, clock, replica=name, board=r.board) for r, name in ((a, "a"), (b, "b"))
    }
    assert (await a.sem.try_acquire("first")).acquired
    served: list[int] = []

    async def ask(r: Replica, n: int, queued: asyncio.Event) -> None:
        async def on_wait(ahead: int) -> None:
            queued.set()

        async with slots[id(r)].hold(on_wait):
            served.append(n)
            await asyncio.sleep(0.005)

    tasks = []
    for n in range(8):
        queued = asyncio.Event()
        tasks.append(asyncio.create_task(ask((a, b)[n % 2], n, queued)))
        await asyncio.wait_for(queued.wait(), 2)
    await quiet()
    await a.sem.release("first")
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert served == list(range(8))
    assert clock.now() == 1000.0
    polls = a.sem.polls + b.sem.polls
    del polls["first"]
    assert sorted(polls.values()) == [2] * 8  # each joined, then polled once: when it was its turn
    assert (await a.sem.in_use(), await a.sem.waiting()) == (0, 0)


async def test_one_renewal_keeps_every_slot_held_here(replica: MakeReplica, redis: Redis) -> None:
    """The slots a replica holds are renewed together, one call each third of a lease, for as
    long as any is held; a holder gone from Redis is reported once and renewed no more."""
    clock = ManualClock()
    r = await replica(3, clock=clock)
    slots = ClusterSlots(r.sem, clock, replica="a", board=r.board)
    entered = [asyncio.Event() for _ in range(2)]
    leave = asyncio.Event()

    async def hold(n: int) -> None:
        async with slots.hold(lambda ahead: asyncio.sleep(0)):
            entered[n].set()
            await leave.wait()

    tasks = [asyncio.create_task(hold(n)) for n in range(2)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered)), 2)
    holders = sorted(m.decode() for m in await redis.zrange(semaphore_key(BOT, "holders"), 0, -1))

    async def tick(renewals: int) -> None:  # a third of a lease, and the renewal it brings
        await clock.advance(HEARTBEAT)
        await eventually(lambda: asyncio.sleep(0, len(r.sem.renewals) == renewals))
        await settle()

    await tick(1)
    await tick(2)
    assert r.sem.renewals == [holders, holders]
    await redis.zrem(semaphore_key(BOT, "holders"), holders[0])  # its lease lapsed, say
    await tick(3)
    await tick(4)
    assert r.sem.renewals == [holders, holders, holders, holders[1:]]
    leave.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    await clock.advance(3 * HEARTBEAT)
    assert len(r.sem.renewals) == 4  # nothing held: no more renewals

