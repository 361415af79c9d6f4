"""The Redis rate limits: GCRA bursts, sustained rate, sharing across replicas, blocks, expiry;
the bot-wide sliding window."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from storage.limiter import RedisRateLimiter

BOT_ID = 42


@pytest.fixture
def limiter(redis: Redis) -> RedisRateLimiter:
    return RedisRateLimiter(redis, bot_id=BOT_ID)


async def grants_for(limiter: RedisRateLimiter, name: str, seconds: float, *, period: float, burst: int) -> int:
    """Acquire in a loop for ``seconds``, sleeping each returned wait; count the grants."""
    grants, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        wait = await limiter.acquire(name, period=period, burst=burst)
        if wait == 0.0:
            grants += 1
        else:
            await asyncio.sleep(wait)
    return grants


def test_key_names(limiter: RedisRateLimiter, redis: Redis) -> None:
    """Every limiter key shares one hash tag, so one script may book a chat's unit and the bot's."""
    assert limiter.chat(-100123) == "yq:42:{rl}:c:-100123"
    assert limiter.bot() == "yq:42:{rl}:bot"
    assert RedisRateLimiter(redis, bot_id=7, prefix="t").bot() == "t:7:{rl}:bot"


async def test_burst_then_wait(limiter: RedisRateLimiter) -> None:
    """A burst of N goes at once, then the next unit waits up to one period."""
    name = limiter.chat(1)
    assert [await limiter.acquire(name, period=10.0, burst=3) for _ in range(3)] == [0.0] * 3
    assert 9.0 < await limiter.acquire(name, period=10.0, burst=3) <= 10.0


async def test_sustained_rate_never_exceeded(limiter: RedisRateLimiter) -> None:
    """Over a window, grants never exceed burst + elapsed / period, and the rate is actually used."""
    start = time.monotonic()
    grants = await grants_for(limiter, limiter.chat(7), 0.3, period=0.01, burst=2)
    elapsed = time.monotonic() - start
    assert grants <= 2 + elapsed / 0.01 + 1
    assert grants >= 3


async def test_two_replicas_share_the_budget(redis_url: str, redis: Redis) -> None:
    """Two limiters on two clients draw on one budget, both one by one and when racing."""
    other = Redis.from_url(redis_url)
    try:
        a, b = RedisRateLimiter(redis, bot_id=BOT_ID), RedisRateLimiter(other, bot_id=BOT_ID)
        assert await a.acquire(a.chat(5), period=10.0, burst=2) == 0.0
        assert await b.acquire(b.chat(5), period=10.0, burst=2) == 0.0
        assert await a.acquire(a.chat(5), period=10.0, burst=2) > 9.0
        assert await b.acquire(b.chat(5), period=10.0, burst=2) > 9.0

        start = time.monotonic()
        counts = await asyncio.gather(
            *(grants_for(lim, lim.chat(8), 0.3, period=0.02, burst=1) for lim in (a, b, a, b))
        )
        elapsed = time.monotonic() - start
        assert sum(counts) <= 1 + elapsed / 0.02 + 1
        assert sum(counts) >= 3
    finally:
        await other.aclose(close_connection_pool=True)


async def test_block_refuses_for_its_length(limiter: RedisRateLimiter) -> None:
    """After block(s), acquire answers a wait of about s even with a generous limit."""
    name = limiter.chat(2)
    await limiter.block(name, 10.0)
    assert 9.0 < await limiter.acquire(name, period=0.01, burst=5) <= 10.0


async def test_block_never_shortens_a_longer_wait(limiter: RedisRateLimiter) -> None:
    """A short block leaves a longer booking's wait in place."""
    name = limiter.chat(3)
    assert await limiter.acquire(name, period=10.0) == 0.0
    await limiter.block(name, 0.1)
    assert await limiter.acquire(name, period=10.0) > 9.0


async def test_keys_expire(limiter: RedisRateLimiter, redis: Redis) -> None:
    """Booked and blocked keys carry a TTL no longer than needed to refill the bucket or end the block."""
    await limiter.acquire(limiter.chat(4), period=0.5, burst=3)
    assert 0 < await redis.pttl(limiter.chat(4)) <= 500
    await limiter.block(limiter.chat(5), 20.0)
    assert 15_000 < await redis.pttl(limiter.chat(5)) <= 20_000
    await limiter.acquire(limiter.chat(9), period=0.02)
    await limiter.window(limiter.bot(), limit=5, span=0.02)
    for _ in range(200):  # the TTLs are 20 ms; poll up to ~2 s for them to lapse
        if not await redis.exists(limiter.chat(9), limiter.bot()):
            break
        await asyncio.sleep(0.01)
    assert await redis.exists(limiter.chat(9), limiter.bot()) == 0


async def test_a_refusal_books_nothing(limiter: RedisRateLimiter, redis: Redis) -> None:
    """A refused acquire leaves the stored state untouched."""
    name = limiter.chat(6)
    assert await limiter.acquire(name, period=10.0) == 0.0
    stored = await redis.get(name)
    for _ in range(3):
        assert await limiter.acquire(name, period=10.0) > 9.0
    assert await redis.get(name) == stored


async def test_take_books_the_chat_then_the_bot(limiter: RedisRateLimiter, redis: Redis) -> None:
    """take() books both units in one call; a refused chat books nothing and leaves the bot
    unasked; a refused bot leaves the chat booked (nothing else goes in it meanwhile)."""
    chat, bot = limiter.chat(1), limiter.bot()
    options = {"period": 10.0, "burst": 2, "reserve": 1, "limit": 2, "bot_reserve": 0}
    assert await limiter.take(chat, bot, **options) == (0.0, 0.0)
    assert await redis.zcard(bot) == 1
    chat_wait, bot_wait = await limiter.take(chat, bot, **options)  # the chat keeps its reserve
    assert 9.0 < chat_wait <= 10.0 and bot_wait is None
    assert await redis.zcard(bot) == 1
    other = limiter.chat(2)
    assert await limiter.take(other, bot, **options) == (0.0, 0.0)
    chat_wait, bot_wait = await limiter.take(limiter.chat(3), bot, **options)  # the window is full
    assert chat_wait == 0.0 and bot_wait is not None and 0.0 < bot_wait <= 1.0
    assert 9.0 < await limiter.acquire(limiter.chat(3), period=10.0, burst=2, reserve=1) <= 10.0
    assert await redis.zcard(bot) == 2


async def test_decoded_client(redis_url: str, redis: Redis) -> None:
    """A client with decode_responses=True gets the same answers."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        limiter = RedisRateLimiter(client, bot_id=BOT_ID)
        assert await limiter.acquire(limiter.chat(1), period=10.0) == 0.0
        assert await limiter.acquire(limiter.chat(1), period=10.0) > 9.0
        assert await limiter.window(limiter.bot(), limit=1, span=10.0) == 0.0
        assert await limiter.window(limiter.bot(), limit=1, span=10.0) > 9.0
    finally:
        await client.aclose(close_connection_pool=True)


async def test_bad_arguments(limiter: RedisRateLimiter) -> None:
    """A cost above the burst, a non-positive period or a reserve of the whole window (never
    grantable) is refused outright."""
    with pytest.raises(ValueError, match="cost"):
        await limiter.acquire(limiter.chat(1), period=1.0, burst=2, cost=3)
    with pytest.raises(ValueError, match="period"):
        await limiter.acquire(limiter.chat(1), period=0.0)
    with pytest.raises(ValueError, match="reserve"):
        await limiter.window(limiter.bot(), limit=3, reserve=3)


async def test_window_grants_its_limit_then_waits_for_the_oldest(limiter: RedisRateLimiter, redis: Redis) -> None:
    """Up to ``limit`` go at once; the next waits until the oldest grant leaves the window, and
    a refusal books nothing."""
    name = limiter.bot()
    assert [await limiter.window(name, limit=3, span=10.0) for _ in range(3)] == [0.0] * 3
    assert 9.0 < await limiter.window(name, limit=3, span=10.0) <= 10.0
    assert await redis.zcard(name) == 3
    assert 9_000 < await redis.pttl(name) <= 10_000


async def test_window_reserve_is_left_to_the_urgent(limiter: RedisRateLimiter) -> None:
    """Callers keeping a reserve are spread out (span / limit apart) and stop short of the
    limit; a caller with none goes at once and may use the rest."""
    name = limiter.bot()
    assert await limiter.window(name, limit=3, span=0.3, reserve=1) == 0.0
    gap = await limiter.window(name, limit=3, span=0.3, reserve=1)
    assert 0.05 < gap <= 0.1
    await asyncio.sleep(gap)
    assert await limiter.window(name, limit=3, span=0.3, reserve=1) == 0.0
    assert await limiter.window(name, limit=3, span=0.3, reserve=1) > 0.1  # the oldest must leave
    assert await limiter.window(name, limit=3, span=0.3) == 0.0
    assert await limiter.window(name, limit=3, span=0.3) > 0.1


async def test_window_slides(limiter: RedisRateLimiter) -> None:
    """A grant leaves the window ``span`` after it was made, making room for one more."""
    name = limiter.bot()
    assert await limiter.window(name, limit=2, span=0.2) == 0.0
    await asyncio.sleep(0.1)
    assert await limiter.window(name, limit=2, span=0.2) == 0.0
    wait = await limiter.window(name, limit=2, span=0.2)
    assert 0.0 < wait <= 0.1  # the first grant leaves first
    await asyncio.sleep(wait)
    assert await limiter.window(name, limit=2, span=0.2) == 0.0


async def test_two_replicas_share_the_window(redis_url: str, redis: Redis) -> None:
    """Two clients racing on one window never get more than ``limit`` grants in one ``span``."""
    other = Redis.from_url(redis_url)
    grants: list[float] = []

    async def race(limiter: RedisRateLimiter) -> None:
        deadline = time.monotonic() + 0.35
        while time.monotonic() < deadline:
            if (wait := await limiter.window(limiter.bot(), limit=4, span=0.1)) == 0.0:
                grants.append(time.monotonic())
            else:
                await asyncio.sleep(wait)

    try:
        a, b = RedisRateLimiter(redis, bot_id=BOT_ID), RedisRateLimiter(other, bot_id=BOT_ID)
        await asyncio.gather(race(a), race(b), race(a), race(b))
    finally:
        await other.aclose(close_connection_pool=True)
    grants.sort()
    assert len(grants) >= 8  # the windows were used, not just the first
    # when a caller resumes lags Redis's grant by a round trip: allow that much on each side
    assert all(later - earlier >= 0.1 - 0.02 for earlier, later in zip(grants, grants[4:], strict=False))
