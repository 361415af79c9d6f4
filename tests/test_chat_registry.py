"""RedisChatRegistry on real Redis: a migration recorded by one replica is seen by every other."""

from __future__ import annotations

from redis.asyncio import Redis

from storage import RedisChatRegistry

BOT_ID = 123456
OLD, NEW = -4001, -1004001


async def test_a_migration_recorded_elsewhere_is_seen_after_an_earlier_lookup(redis: Redis) -> None:
    """A replica that looked the supergroup up before the migration sees the alias once another records it."""
    here, there = RedisChatRegistry(redis, bot_id=BOT_ID), RedisChatRegistry(redis, bot_id=BOT_ID)
    assert await here.canonical(NEW) == NEW
    await there.migrate(OLD, NEW)
    assert await here.canonical(NEW) == OLD


async def test_migrations_chain_back_to_the_first_id(redis: Redis) -> None:
    """Recording the same migration twice (Telegram says it in both chats) keeps the first id."""
    registry = RedisChatRegistry(redis, bot_id=BOT_ID)
    await registry.migrate(OLD, NEW)
    await registry.migrate(OLD, NEW)
    assert await RedisChatRegistry(redis, bot_id=BOT_ID).canonical(NEW) == OLD
    assert await registry.canonical(OLD) == OLD
