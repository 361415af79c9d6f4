"""Token usage accounting and per-user quotas (storage.usage) against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from storage.usage import (
    DAY_TTL_SECONDS,
    Admission,
    RedisUsage,
    Usage,
    all_day_key,
    all_total_key,
    rate_key,
    user_day_key,
    user_total_key,
)
from tests.conftest import CountingConnection

BOT_ID = 42
USER = 99
MAY_1 = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
NOON = MAY_1 + 12 * 3600


@pytest.fixture(name="usage")
def _usage(redis: Redis) -> RedisUsage:
    return RedisUsage(redis, bot_id=BOT_ID)


# --- accounting -----------------------------------------------------------------------------


async def test_record_counts_today_and_total_per_user_and_bot_wide(usage: RedisUsage) -> None:
    """Recorded tokens add up per user for the day and in total, and for the whole bot."""
    await usage.record(USER, 100, now=NOON)
    await usage.record(USER, 23, now=NOON + 60)
    await usage.record(7, 5, now=NOON)
    assert await usage.usage(USER, now=NOON) == Usage(today=123, total=123)
    assert await usage.usage(7, now=NOON) == Usage(today=5, total=5)
    assert await usage.bot_usage(now=NOON) == Usage(today=128, total=128)


async def test_unknown_user_has_no_usage(usage: RedisUsage) -> None:
    """A user who never used the bot has zero for today and in total."""
    assert await usage.usage(USER, now=NOON) == Usage(today=0, total=0)


async def test_non_positive_tokens_are_not_recorded(usage: RedisUsage, redis: Redis) -> None:
    """Zero or negative token counts (a missing or odd usage block) write nothing."""
    await usage.record(USER, 0, now=NOON)
    await usage.record(USER, -5, now=NOON)
    assert await redis.dbsize() == 0


async def test_day_rolls_over_at_utc_midnight(usage: RedisUsage) -> None:
    """Tokens from the last second of a UTC day do not count toward the next day, but stay in the total."""
    await usage.record(USER, 40, now=MAY_1 + 86_399.5)
    await usage.record(USER, 2, now=MAY_1 + 86_400)
    assert await usage.usage(USER, now=MAY_1 + 86_399.9) == Usage(today=40, total=42)
    assert await usage.usage(USER, now=MAY_1 + 86_400) == Usage(today=2, total=42)
    assert await usage.bot_usage(now=MAY_1 + 86_400) == Usage(today=2, total=42)


async def test_bots_never_share_usage(redis: Redis) -> None:
    """The same user under two bot ids has two separate accounts."""
    await RedisUsage(redis, bot_id=1).record(USER, 10, now=NOON)
    assert await RedisUsage(redis, bot_id=2).usage(USER, now=NOON) == Usage(today=0, total=0)


async def test_day_counters_expire_and_totals_do_not(usage: RedisUsage, redis: Redis) -> None:
    """Day counters get a TTL of a few days, refreshed on write; lifetime totals have none."""
    await usage.record(USER, 10, now=NOON)
    for name in (user_day_key(BOT_ID, USER, "2024-05-01"), all_day_key(BOT_ID, "2024-05-01")):
        assert DAY_TTL_SECONDS - 5 <= await redis.ttl(name) <= DAY_TTL_SECONDS
    for name in (user_total_key(BOT_ID, USER), all_total_key(BOT_ID)):
        assert await redis.ttl(name) == -1


# --- quotas ---------------------------------------------------------------------------------


async def test_token_limit_refuses_once_the_day_reaches_it(usage: RedisUsage) -> None:
    """Below the daily limit a message is let in; at it, refused until the next UTC midnight."""
    await usage.record(USER, 999, now=NOON)
    assert await usage.admit(USER, daily_tokens=1000, per_minute=None, now=NOON) == Admission(True, "ok", 0.0)
    await usage.record(USER, 1, now=NOON)
    refused = await usage.admit(USER, daily_tokens=1000, per_minute=None, now=NOON + 0.5)
    assert refused == Admission(False, "tokens", 12 * 3600 - 0.5)
    tomorrow = await usage.admit(USER, daily_tokens=1000, per_minute=None, now=MAY_1 + 86_400)
    assert tomorrow.allowed


async def test_message_rate_refuses_the_extra_message_in_a_minute(usage: RedisUsage) -> None:
    """With N a minute, the (N+1)th message within 60 s is refused until the oldest leaves the window."""
    for offset in (0, 10, 20):
        assert (await usage.admit(USER, daily_tokens=None, per_minute=3, now=NOON + offset)).allowed
    refused = await usage.admit(USER, daily_tokens=None, per_minute=3, now=NOON + 25)
    assert refused == Admission(False, "rate", 35.0)
    assert not (await usage.admit(USER, daily_tokens=None, per_minute=3, now=NOON + 59.9)).allowed
    assert (await usage.admit(USER, daily_tokens=None, per_minute=3, now=NOON + 60)).allowed


async def test_refused_messages_are_not_counted(usage: RedisUsage, redis: Redis) -> None:
    """Refused messages (for rate or for tokens) take no slot: a freed slot admits exactly one message."""
    for offset in (0, 30):
        assert (await usage.admit(USER, daily_tokens=None, per_minute=2, now=NOON + offset)).allowed
    for offset in (31, 40, 50, 59):
        assert (await usage.admit(USER, daily_tokens=None, per_minute=2, now=NOON + offset)).reason == "rate"
    assert await redis.zcard(rate_key(BOT_ID, USER)) == 2
    assert (await usage.admit(USER, daily_tokens=None, per_minute=2, now=NOON + 60)).allowed
    assert (await usage.admit(USER, daily_tokens=None, per_minute=2, now=NOON + 61)).reason == "rate"

    await usage.record(7, 50, now=NOON)
    for _ in range(3):
        assert (await usage.admit(7, daily_tokens=50, per_minute=1, now=NOON)).reason == "tokens"
    assert await redis.exists(rate_key(BOT_ID, 7)) == 0


async def test_a_lowered_rate_limit_waits_for_enough_slots(usage: RedisUsage) -> None:
    """When more messages are in the window than a lowered limit, reset_in waits until one fewer remains."""
    for offset in (0, 10, 20):
        assert (await usage.admit(USER, daily_tokens=None, per_minute=5, now=NOON + offset)).allowed
    assert await usage.admit(USER, daily_tokens=None, per_minute=2, now=NOON + 30) == Admission(False, "rate", 40.0)


async def test_rate_window_key_expires(usage: RedisUsage, redis: Redis) -> None:
    """The admitted-message set lives only as long as the window."""
    await usage.admit(USER, daily_tokens=None, per_minute=5, now=NOON)
    assert 55_000 <= await redis.pttl(rate_key(BOT_ID, USER)) <= 60_000


async def test_unlimited_touches_no_redis(counting: tuple[Redis, type[CountingConnection]]) -> None:
    """With both limits off, admit lets every message in without a single Redis call or key."""
    client, counter = counting
    usage = RedisUsage(client, bot_id=BOT_ID)
    for _ in range(100):
        assert await usage.admit(USER, daily_tokens=None, per_minute=None, now=NOON) == Admission(True, "ok", 0.0)
    assert counter.writes == 0
    assert await client.dbsize() == 0


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("record", None),
        ("usage", Usage(today=10, total=10)),
        ("admit-ok", Admission(True, "ok", 0.0)),
        ("admit-tokens", Admission(False, "tokens", 12 * 3600.0)),
        ("admit-rate", Admission(False, "rate", 60.0)),
    ],
)
async def test_each_call_is_one_round_trip(
    counting: tuple[Redis, type[CountingConnection]], operation: str, expected: object
) -> None:
    """record, usage and admit (allowed or refused either way) each cost one round trip to Redis."""
    client, counter = counting
    usage = RedisUsage(client, bot_id=BOT_ID)
    await usage.record(USER, 10, now=NOON)
    await usage.admit(USER, daily_tokens=None, per_minute=1, now=NOON)  # also loads the script
    counter.writes = 0
    result: object = None
    if operation == "record":
        await usage.record(USER, 5, now=NOON)
    elif operation == "usage":
        result = await usage.usage(USER, now=NOON)
    elif operation == "admit-ok":
        result = await usage.admit(USER, daily_tokens=11, per_minute=1, now=NOON + 60)
    elif operation == "admit-tokens":
        result = await usage.admit(USER, daily_tokens=10, per_minute=1, now=NOON)
    else:
        result = await usage.admit(USER, daily_tokens=11, per_minute=1, now=NOON)
    assert result == expected
    assert counter.writes == 1


async def test_admit_works_after_the_script_cache_is_flushed(usage: RedisUsage, redis: Redis) -> None:
    """A Redis that lost its scripts (restart, failover) still gets the script and answers correctly."""
    assert (await usage.admit(USER, daily_tokens=None, per_minute=1, now=NOON)).allowed
    await redis.script_flush()
    assert (await usage.admit(USER, daily_tokens=None, per_minute=1, now=NOON + 1)).reason == "rate"


async def test_works_with_decoded_responses(redis_url: str, redis: Redis) -> None:
    """A client returning str instead of bytes reads the same usage and rate refusals."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        usage = RedisUsage(client, bot_id=BOT_ID)
        await usage.record(USER, 7, now=NOON)
        assert await usage.usage(USER, now=NOON) == Usage(today=7, total=7)
        assert (await usage.admit(USER, daily_tokens=None, per_minute=1, now=NOON + 0.25)).allowed
        refused = await usage.admit(USER, daily_tokens=8, per_minute=1, now=NOON + 30)
        assert refused == Admission(False, "rate", 30.25)
    finally:
        await client.aclose(close_connection_pool=True)


# --- keys -----------------------------------------------------------------------------------


def test_key_names() -> None:
    """Keys follow the project scheme, with the user's keys hash-tagged {u:<user>}."""
    assert user_day_key(42, 99, "2024-05-01") == "yq:42:usage:{u:99}:d2024-05-01"
    assert user_total_key(42, 99) == "yq:42:usage:{u:99}:total"
    assert all_day_key(42, "2024-05-01") == "yq:42:usage:all:d2024-05-01"
    assert all_total_key(42) == "yq:42:usage:all:total"
    assert rate_key(42, 99, "p") == "p:42:rate:{u:99}"


def test_a_users_keys_share_one_cluster_slot() -> None:
    """The admit script's keys (and usage's MGET) land in one Redis Cluster slot; other users' elsewhere."""
    slots = {
        key_slot(name.encode())
        for name in (user_day_key(42, 99, "2024-05-01"), user_total_key(42, 99), rate_key(42, 99))
    }
    assert len(slots) == 1
    assert key_slot(rate_key(42, 100).encode()) not in slots
