"""The Redis counting semaphore: the limit holds across replicas, waiters are served in order, leases lapse."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from storage import StorageError
from storage.semaphore import RedisSemaphore, Ticket, freed_channel, semaphore_key
from tests.conftest import CountingConnection, eventually, pubsub_clients

BOT = 7


def make(redis: Redis, limit: int = 1) -> RedisSemaphore:
    return RedisSemaphore(redis, bot_id=BOT, limit=limit)


async def never(_: float) -> None:
    """A sleep that lasts until cancelled."""
    await asyncio.Event().wait()


def test_keys_share_one_hash_tag() -> None:
    """All three keys start with the prefix and bot id and carry the same Redis Cluster hash tag."""
    keys = [semaphore_key(BOT, part, "px") for part in ("holders", "queue", "alive")]
    assert keys == ["px:7:{agent}:holders", "px:7:{agent}:queue", "px:7:{agent}:alive"]


@pytest.mark.parametrize("replicas", [1, 2])
async def test_never_more_than_limit_holders(redis: Redis, redis_url: str, replicas: int) -> None:
    """Fifty concurrent acquirers, split over one or two clients, never hold more than ten slots at once."""
    clients = [redis] + [Redis.from_url(redis_url) for _ in range(replicas - 1)]
    sems = [make(client, limit=10) for client in clients]
    held, peak = 0, 0
    full = asyncio.Event()  # the first ten hold until all ten are in, so the peak is reached for sure

    async def work(i: int) -> None:
        nonlocal held, peak
        sem = sems[i % replicas]
        await sem.acquire(f"h{i}", poll=0.002)
        held += 1
        peak = max(peak, held)
        if held == 10:
            full.set()
        await full.wait()
        await asyncio.sleep(0.002)
        held -= 1
        await sem.release(f"h{i}")

    try:
        await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(50))), 5)
    finally:
        for client in clients[1:]:
            await client.aclose()
    assert peak == 10
    assert await sems[0].in_use() == 0
    assert await sems[0].waiting() == 0


async def test_waiters_get_slots_in_arrival_order(redis: Redis) -> None:
    """Waiters get the slot in the order they first queued, whatever order they poll in."""
    sem = make(redis)
    assert await sem.try_acquire("h") == Ticket(acquired=True, ahead=0)
    names = [f"w{i}" for i in range(5)]
    assert [await sem.try_acquire(n) for n in names] == [Ticket(False, i) for i in range(5)]
    served: list[str] = []
    current = "h"
    while len(served) < len(names):
        await sem.release(current)
        remaining = [n for n in names if n not in served]
        winners = [n for n in reversed(remaining) if (await sem.try_acquire(n)).acquired]
        assert len(winners) == 1
        current = winners[0]
        served.append(current)
    assert served == names


async def test_ahead_counts_down_as_slots_free(redis: Redis) -> None:
    """acquire reports the number of waiters ahead each time it changes, down to zero, then takes the slot."""
    sem = make(redis)
    await sem.try_acquire("h")
    await sem.try_acquire("w0")
    await sem.try_acquire("w1")
    seen: list[int] = []

    async def on_wait(ahead: int) -> None:
        seen.append(ahead)

    # Each poll the test frees the current slot and the head of the queue takes it (one poll changes nothing).
    steps = iter([("h", "w0"), None, ("w0", "w1"), ("w1", None)])

    async def sleep(_: float) -> None:
        step = next(steps)
        if step is not None:
            await sem.release(step[0])
            if step[1] is not None:
                assert (await sem.try_acquire(step[1])).acquired

    await sem.acquire("w2", on_wait=on_wait, sleep=sleep)
    assert seen == [2, 1, 0]
    assert await sem.in_use() == 1


async def test_lapsed_lease_gives_slot_to_waiter(redis: Redis) -> None:
    """A holder that stops renewing loses its slot to a waiter once its lease lapses."""
    crashed, sem = make(redis), make(redis)
    assert (await crashed.try_acquire("crashed")).acquired
    assert await sem.try_acquire("w") == Ticket(False, 0)
    crashed.lease_ms = 0  # its last renewal sets the expiry to "now": lapsed for every later call
    assert await crashed.renew("crashed")
    assert (await sem.try_acquire("w")).acquired
    assert not await crashed.renew("crashed")
    assert await sem.in_use() == 1


async def test_renew_fails_after_lease_lapsed(redis: Redis) -> None:
    """renew is False once the lease has lapsed, and pushes the expiry forward while it holds."""
    sem = make(redis)
    sem.lease_ms = 1
    assert not await sem.renew("nobody")
    assert (await sem.try_acquire("h")).acquired
    await asyncio.sleep(0.01)  # ten times the lease, on the server's clock too
    assert not await sem.renew("h")
    assert await sem.in_use() == 0

    sem.lease_ms = 15_000
    holders = semaphore_key(BOT, "holders")
    assert (await sem.try_acquire("g")).acquired
    before = await redis.zscore(holders, "g")
    await asyncio.sleep(0.005)
    assert await sem.renew("g")
    after = await redis.zscore(holders, "g")
    assert before is not None and after is not None and after > before


async def test_renew_all_renews_the_holders_that_still_hold(redis: Redis) -> None:
    """One call renews every holder given: those still holding a slot are pushed forward, one
    that lost (or never had) its slot is reported and not given one."""
    sem = make(redis, limit=2)
    holders = semaphore_key(BOT, "holders")
    for holder in ("a", "b"):
        assert (await sem.try_acquire(holder)).acquired
    before = {h: await redis.zscore(holders, h) for h in ("a", "b")}
    await asyncio.sleep(0.005)
    assert await sem.renew_all(["a", "gone", "b"]) == [True, False, True]
    after = {h: await redis.zscore(holders, h) for h in ("a", "b")}
    assert all((after[h] or 0) > (before[h] or 0) for h in ("a", "b"))
    assert await redis.zscore(holders, "gone") is None
    assert await sem.renew_all([]) == []


async def test_lapsed_waiter_stops_blocking_the_queue(redis: Redis) -> None:
    """A waiter whose heartbeat lapsed is dropped, so the one behind it moves up and gets the slot."""
    ghost, sem = make(redis), make(redis)
    await sem.try_acquire("h")
    assert await ghost.try_acquire("ghost") == Ticket(False, 0)
    assert await sem.try_acquire("w") == Ticket(False, 1)
    ghost.waiter_ttl_ms = 0  # its last poll sets the heartbeat's expiry to "now": lapsed for every later call
    assert await ghost.try_acquire("ghost") == Ticket(False, 0)
    assert await sem.try_acquire("w") == Ticket(False, 0)
    assert await sem.waiting() == 1
    await sem.release("h")
    assert (await sem.try_acquire("w")).acquired
    assert await redis.zcard(semaphore_key(BOT, "queue")) == 0


async def test_release_frees_a_slot_and_a_place(redis: Redis) -> None:
    """release frees the holder's slot, and a waiter that gives up leaves the queue."""
    sem = make(redis)
    assert (await sem.try_acquire("h")).acquired
    assert await sem.try_acquire("quitter") == Ticket(False, 0)
    assert await sem.try_acquire("w") == Ticket(False, 1)
    await sem.release("quitter")
    assert await sem.waiting() == 1
    assert not (await sem.try_acquire("w")).acquired
    await sem.release("h")
    assert await sem.in_use() == 0
    assert (await sem.try_acquire("w")).acquired
    assert (await sem.in_use(), await sem.waiting()) == (1, 0)


async def test_holder_reacquiring_just_renews(redis: Redis) -> None:
    """try_acquire by a current holder succeeds again without taking a second slot, even when full."""
    sem = make(redis)
    assert (await sem.try_acquire("h")).acquired
    assert await sem.try_acquire("w") == Ticket(False, 0)
    assert (await sem.try_acquire("h")).acquired
    assert (await sem.in_use(), await sem.waiting()) == (1, 1)


async def test_lowering_the_limit_stops_new_acquirers(redis: Redis) -> None:
    """With the limit lowered below the slots in use, nobody new gets in until enough are released."""
    sem = make(redis, limit=2)
    assert (await sem.try_acquire("a")).acquired
    assert (await sem.try_acquire("b")).acquired
    sem.limit = 1
    await sem.release("a")
    assert await sem.try_acquire("w") == Ticket(False, 0)
    await sem.release("b")
    assert (await sem.try_acquire("w")).acquired


async def test_cancelled_acquire_leaves_the_queue(redis: Redis) -> None:
    """Cancelling acquire while it waits takes the waiter out of the queue, so the one behind moves up."""
    sem = make(redis)
    await sem.try_acquire("h")
    queued = asyncio.Event()

    async def on_wait(ahead: int) -> None:
        queued.set()

    task = asyncio.create_task(sem.acquire("w", on_wait=on_wait, sleep=never))
    await asyncio.wait_for(queued.wait(), 2)
    assert await sem.waiting() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await sem.waiting() == 0
    assert await sem.try_acquire("next") == Ticket(False, 0)


# --- releases announced -------------------------------------------------------------------------


def test_freed_channel_is_per_bot() -> None:
    assert freed_channel(BOT, "px") == "px:7:agent-freed"


def test_heartbeat_and_fast_interval() -> None:
    """Waiters keep their place by polling thrice per time to live; fast polling grows with the queue."""
    sem = RedisSemaphore(Redis(), bot_id=BOT)
    assert sem.heartbeat == 5.0  # waiter_ttl_ms defaults to 15 s
    assert [sem.fast_interval(ahead, 0.2) for ahead in (0, 1, 4, 24, 100)] == pytest.approx([0.2, 0.4, 1.0, 5.0, 5.0])
    sem.waiter_ttl_ms = 3_000
    assert sem.fast_interval(100, 0.2) == 1.0


async def test_release_announces_only_what_it_freed(redis: Redis) -> None:
    """A release that freed a slot or a place publishes the holder id; one that freed nothing, and
    taking or renewing a slot, publish nothing (a marker published last shows nothing came between)."""
    sem = make(redis)
    async with sem.listen() as releases:
        await sem.release("nobody")
        assert (await sem.try_acquire("h")).acquired
        assert await sem.renew("h")
        assert await sem.try_acquire("w") == Ticket(False, 0)
        await sem.release("w")  # a waiter giving up: those behind it move up
        await sem.release("h")
        await sem.release("h")  # already released
        await redis.publish(freed_channel(BOT), "marker")
        heard = [await asyncio.wait_for(anext(releases), 2) for _ in range(3)]
    assert heard == ["w", "h", "marker"]
    await eventually(lambda: _none(redis))


async def _none(redis: Redis) -> bool:
    return await pubsub_clients(redis) == 0


async def test_release_stays_one_round_trip(counting: tuple[Redis, type[CountingConnection]]) -> None:
    client, counter = counting
    sem = make(client)
    await sem.try_acquire("h")
    counter.writes = 0
    await sem.release("h")
    assert counter.writes == 1


async def test_listen_raises_when_the_subscription_is_lost(redis: Redis, redis_url: str) -> None:
    """A killed subscription surfaces as a StorageError, not as a silent resubscription."""
    other = Redis.from_url(redis_url)
    try:
        async with make(other).listen() as releases:
            assert await pubsub_clients(redis) == 1
            await redis.client_kill_filter(_type="pubsub")
            with pytest.raises(StorageError):
                await asyncio.wait_for(anext(releases), 2)
    finally:
        await other.aclose(close_connection_pool=True)
    await eventually(lambda: _none(redis))


async def test_acquire_pauses_with_the_hook_given(redis: Redis) -> None:
    """With a pause hook, acquire awaits it with the number ahead between polls (no sleep of its own)."""
    sem = make(redis)
    await sem.try_acquire("h")
    await sem.try_acquire("w0")
    paused: list[int] = []

    async def pause(ahead: int) -> None:
        paused.append(ahead)
        if len(paused) == 2:
            await sem.release("h")
            assert (await sem.try_acquire("w0")).acquired
        elif len(paused) == 3:
            await sem.release("w0")

    await sem.acquire("w1", pause=pause, sleep=never)
    assert paused == [1, 1, 0]
