"""The Redis GCRA rate limiter: bursts, sustained rate, sharing across replicas, blocks, expiry."""

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
    """Each key carries its own hash tag, so every key is cluster safe on its own."""
    assert limiter.chat(-100123) == "yq:42:rl:{c:-100123}"
    assert limiter.group(-100123) == "yq:42:rl:{g:-100123}"
    assert limiter.bot() == "yq:42:rl:{bot}"
    assert RedisRateLimiter(redis, bot_id=7, prefix="t").bot() == "t:7:rl:{bot}"


async def test_burst_then_wait(limiter: RedisRateLimiter) -> None:
    """A burst of N goes at once, then the next unit waits up to one period."""
    name = limiter.chat(1)
    assert [await limiter.acquire(name, period=10.0, burst=3) for _ in range(3)] == [0.0] * 3
    assert 9.0 < await limiter.acquire(name, period=10.0, burst=3) <= 10.0


async def test_sustained_rate_never_exceeded(limiter: RedisRateLimiter) -> None:
    """Over a window, grants never exceed burst + elapsed / period, and the rate is actually used."""
    start = time.monotonic()
    grants = await grants_for(limiter, limiter.bot(), 0.3, period=0.01, burst=2)
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
            *(grants_for(lim, lim.bot(), 0.3, period=0.02, burst=1) for lim in (a, b, a, b))
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
    assert await limiter.peek(name, period=0.01, burst=5) > 9.0


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
    await limiter.block(limiter.group(4), 20.0)
    assert 15_000 < await redis.pttl(limiter.group(4)) <= 20_000
    await limiter.acquire(limiter.bot(), period=0.02)
    for _ in range(200):  # the TTL is 20 ms; poll up to ~2 s for it to lapse
        if not await redis.exists(limiter.bot()):
            break
        await asyncio.sleep(0.01)
    assert await redis.exists(limiter.bot()) == 0


async def test_refusal_and_peek_book_nothing(limiter: RedisRateLimiter, redis: Redis) -> None:
    """A refused acquire and any peek leave the stored state untouched."""
    name = limiter.chat(6)
    assert await limiter.peek(name, period=10.0) == 0.0
    assert await redis.exists(name) == 0
    assert await limiter.acquire(name, period=10.0) == 0.0
    stored = await redis.get(name)
    for _ in range(3):
        assert await limiter.acquire(name, period=10.0) > 9.0
    assert await limiter.peek(name, period=10.0) > 9.0
    assert await redis.get(name) == stored


async def test_decoded_client(redis_url: str, redis: Redis) -> None:
    """A client with decode_responses=True gets the same answers."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        limiter = RedisRateLimiter(client, bot_id=BOT_ID)
        assert await limiter.acquire(limiter.bot(), period=10.0) == 0.0
        assert await limiter.acquire(limiter.bot(), period=10.0) > 9.0
    finally:
        await client.aclose(close_connection_pool=True)


async def test_bad_arguments(limiter: RedisRateLimiter) -> None:
    """A cost above the burst (never grantable) or a non-positive period is refused outright."""
    with pytest.raises(ValueError, match="cost"):
        await limiter.acquire(limiter.bot(), period=1.0, burst=2, cost=3)
    with pytest.raises(ValueError, match="period"):
        await limiter.peek(limiter.bot(), period=0.0)
