"""Redis-backed conversation stores: history, chat aliases and the user-id secret."""

from __future__ import annotations

import logging
import secrets

from redis.asyncio import Redis

from storage import keys
from storage.base import ConversationKey, Turn
from storage.records import RecordError, dump_turn, load_turn

log = logging.getLogger(__name__)


class RedisHistoryStore:
    """Turns kept in one Redis list per conversation; each call is a single round trip."""

    def __init__(
        self, redis: Redis, *, bot_id: int, max_turns: int, ttl_seconds: int,
        prefix: str = keys.DEFAULT_PREFIX,
    ) -> None:
        self._redis = redis
        self._bot_id = bot_id
        self._max_turns = max_turns
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _key(self, key: ConversationKey) -> str:
        return keys.history_key(self._bot_id, key, self._prefix)

    async def load(self, key: ConversationKey) -> list[Turn]:
        if self._max_turns == 0:
            return []
        name = self._key(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lrange(name, -self._max_turns, -1)
            pipe.expire(name, self._ttl)
            raw, _ = await pipe.execute()
        turns = []
        for item in raw:
            try:
                turns.append(load_turn(item))
            except RecordError as exc:
                log.warning("skipping an unreadable history record: %s", exc)
        return turns

    async def append(self, key: ConversationKey, turn: Turn) -> None:
        if self._max_turns == 0:
            return
        name = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(name, dump_turn(turn))
            pipe.ltrim(name, -self._max_turns, -1)
            pipe.expire(name, self._ttl)
            await pipe.execute()

    async def replace_last(self, key: ConversationKey, turn: Turn) -> None:
        if self._max_turns == 0:
            return
        name = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:  # never two copies, never none
            pipe.rpop(name)
            pipe.rpush(name, dump_turn(turn))
            pipe.ltrim(name, -self._max_turns, -1)
            pipe.expire(name, self._ttl)
            await pipe.execute()

    async def clear(self, key: ConversationKey) -> None:
        await self._redis.delete(self._key(key))


class RedisChatRegistry:
    """Per-chat facts that outlive a turn: migrated-group aliases and one-time notices.

    Aliases never change once written, so those found are cached in-process. A chat without one
    is asked about again each time: the group may migrate meanwhile, recorded by another replica.
    """

    _CACHE_MAX = 10_000

    def __init__(self, redis: Redis, *, bot_id: int, prefix: str = keys.DEFAULT_PREFIX) -> None:
        self._redis = redis
        self._bot_id = bot_id
        self._prefix = prefix
        self._aliases: dict[int, int] = {}

    async def canonical(self, chat_id: int) -> int:
        """The id a chat's history and identity are kept under (its first id, before migrations)."""
        if chat_id in self._aliases:
            return self._aliases[chat_id]
        raw = await self._redis.get(keys.alias_key(self._bot_id, chat_id, self._prefix))
        if raw is None:
            return chat_id
        if len(self._aliases) >= self._CACHE_MAX:
            self._aliases.clear()
        self._aliases[chat_id] = int(raw)
        return int(raw)

    async def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: the new id continues the old one's conversations."""
        origin = await self.canonical(old_chat_id)
        await self._redis.set(keys.alias_key(self._bot_id, new_chat_id, self._prefix), origin)
        self._aliases[new_chat_id] = origin

    async def first_denial(self, chat_id: int, ttl_seconds: int) -> bool:
        """True the first time (per ``ttl_seconds``) this chat is told it may not use the bot."""
        key = keys.denied_key(self._bot_id, chat_id, self._prefix)
        return bool(await self._redis.set(key, 1, nx=True, ex=ttl_seconds))


async def load_or_create_secret(
    redis: Redis, *, bot_id: int, prefix: str = keys.DEFAULT_PREFIX
) -> bytes:
    """The bot's user-id hashing secret: made once, then the same for every replica and restart."""
    name = keys.secret_key(bot_id, prefix)
    await redis.set(name, secrets.token_hex(32), nx=True)
    value = await redis.get(name)
    if value is None:  # deleted between the two calls; vanishingly rare
        msg = f"{name} disappeared while being created"
        raise RuntimeError(msg)
    return value if isinstance(value, bytes) else str(value).encode()
