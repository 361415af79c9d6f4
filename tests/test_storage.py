"""The storage package against a real Redis: history store, key scheme, records, secret; plus identity."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from redis.asyncio import Redis

import storage
from bot.agent.identity import user_id_for
from storage import (
    ConversationKey,
    RedisHistoryStore,
    Turn,
    history_key,
    load_or_create_secret,
)
from tests.conftest import CountingConnection

BOT_ID = 42
TTL = 3600
KEY = ConversationKey(chat_id=-1001234567890, thread_id=7, user_id=99)
MakeStore = Callable[..., RedisHistoryStore]


def turn(i: int) -> Turn:
    return Turn(question=f"question {i}", answer=f"answer {i}", at=1_700_000_000.5 + i)


@pytest.fixture(name="make_store")
def _make_store(redis: Redis) -> MakeStore:
    def make(*, max_turns: int = 10, ttl_seconds: int = TTL, bot_id: int = BOT_ID) -> RedisHistoryStore:
        return RedisHistoryStore(redis, bot_id=bot_id, max_turns=max_turns, ttl_seconds=ttl_seconds)

    return make


# --- RedisHistoryStore ----------------------------------------------------------------------


async def test_append_then_load_round_trips(make_store: MakeStore) -> None:
    """Turns come back equal and oldest first, non-ASCII and fractional times included."""
    store = make_store()
    turns = [turn(1), Turn("你好 😀", "答案：\n**好**", 1.25), turn(3)]
    for t in turns:
        await store.append(KEY, t)
    assert await store.load(KEY) == turns


async def test_load_of_unknown_conversation_is_empty(make_store: MakeStore) -> None:
    """A conversation never written has no history."""
    assert await make_store().load(KEY) == []


async def test_keeps_only_the_newest_max_turns(make_store: MakeStore, redis: Redis) -> None:
    """Appending beyond max_turns drops the oldest turns from Redis, not only from what load returns."""
    store = make_store(max_turns=3)
    for i in range(7):
        await store.append(KEY, turn(i))
    assert await store.load(KEY) == [turn(4), turn(5), turn(6)]
    assert await redis.llen(history_key(BOT_ID, KEY)) == 3


async def test_replace_last_swaps_the_newest_turn_only(make_store: MakeStore) -> None:
    """A regenerated answer takes the newest turn's place: never a duplicate, older turns kept;
    on an empty (expired) conversation it is simply the first turn."""
    store = make_store(max_turns=3)
    for i in range(3):
        await store.append(KEY, turn(i))
    await store.replace_last(KEY, Turn("q2", "a better answer", 9.0))
    assert await store.load(KEY) == [turn(0), turn(1), Turn("q2", "a better answer", 9.0)]
    await store.clear(KEY)
    await store.replace_last(KEY, turn(7))
    assert await store.load(KEY) == [turn(7)]


@pytest.mark.parametrize("operation", ["load", "append"])
async def test_each_call_is_one_round_trip(
    counting: tuple[Redis, type[CountingConnection]], operation: str
) -> None:
    """load and append each cost exactly one round trip to Redis (a single pipeline)."""
    client, counter = counting
    store = RedisHistoryStore(client, bot_id=BOT_ID, max_turns=5, ttl_seconds=TTL)
    await store.append(KEY, turn(0))
    counter.writes = 0
    if operation == "load":
        assert await store.load(KEY) == [turn(0)]
    else:
        await store.append(KEY, turn(1))
    assert counter.writes == 1


async def test_append_sets_ttl_and_load_refreshes_it(make_store: MakeStore, redis: Redis) -> None:
    """A conversation expires after the TTL, and reading it starts the TTL again."""
    store = make_store(ttl_seconds=TTL)
    name = history_key(BOT_ID, KEY)
    await store.append(KEY, turn(1))
    assert TTL - 5 <= await redis.ttl(name) <= TTL
    await redis.expire(name, 10)
    await store.load(KEY)
    assert TTL - 5 <= await redis.ttl(name) <= TTL


async def test_clear_deletes_the_key(make_store: MakeStore, redis: Redis) -> None:
    """Clearing removes the conversation's key entirely, and nothing loads afterwards."""
    store = make_store()
    await store.append(KEY, turn(1))
    await store.clear(KEY)
    assert await redis.exists(history_key(BOT_ID, KEY)) == 0
    assert await store.load(KEY) == []


async def test_unreadable_records_are_skipped(
    make_store: MakeStore, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage or records of another version are skipped with a warning; the readable turns still load."""
    store = make_store()
    name = history_key(BOT_ID, KEY)
    await store.append(KEY, turn(1))
    await redis.rpush(name, "not json {", '{"v": 99}', '{"v": 1, "q": "no answer"}', "[]")
    await store.append(KEY, turn(2))
    with caplog.at_level(logging.WARNING, logger="storage"):
        assert await store.load(KEY) == [turn(1), turn(2)]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 4


async def test_records_are_versioned_json_with_text_unescaped(make_store: MakeStore, redis: Redis) -> None:
    """A stored record is JSON with "v": 1, and non-ASCII text is kept as UTF-8, not \\u-escaped."""
    await make_store().append(KEY, Turn("你好", "😀 ok", 12.5))
    [raw] = await redis.lrange(history_key(BOT_ID, KEY), 0, -1)
    assert json.loads(raw) == {"v": 1, "q": "你好", "a": "😀 ok", "t": 12.5}
    assert "你好".encode() in raw
    assert "😀".encode() in raw
    assert b"\\u" not in raw


async def test_max_turns_zero_stores_nothing(make_store: MakeStore, redis: Redis) -> None:
    """With history switched off, appending writes no key and loading returns nothing."""
    store = make_store(max_turns=0)
    await store.append(KEY, turn(1))
    assert await redis.exists(history_key(BOT_ID, KEY)) == 0
    assert await store.load(KEY) == []


_DISTINCT_KEYS = [
    ConversationKey(1),
    ConversationKey(2),
    ConversationKey(-1),
    ConversationKey(1, thread_id=2),
    ConversationKey(1, user_id=2),
    ConversationKey(1, thread_id=2, user_id=3),
    ConversationKey(1, thread_id=3, user_id=2),
    ConversationKey(1, thread_id=0),
    ConversationKey(12, thread_id=3),
    ConversationKey(1, thread_id=23),
]


async def test_conversations_never_share_history(make_store: MakeStore) -> None:
    """A turn stored for one chat/thread/user combination is invisible to every other combination."""
    store = make_store()
    for i, key in enumerate(_DISTINCT_KEYS):
        await store.append(key, turn(i))
    for i, key in enumerate(_DISTINCT_KEYS):
        assert await store.load(key) == [turn(i)], key


async def test_bots_never_share_history(make_store: MakeStore) -> None:
    """The same conversation under two bot ids is two histories."""
    await make_store(bot_id=1).append(KEY, turn(1))
    assert await make_store(bot_id=2).load(KEY) == []


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        pytest.param(ConversationKey(5), "yq", "yq:42:conv:5:history", id="chat"),
        pytest.param(
            ConversationKey(-100123, thread_id=7), "yq", "yq:42:conv:-100123:t7:history", id="thread"
        ),
        pytest.param(ConversationKey(-100123, user_id=9), "yq", "yq:42:conv:-100123:u9:history", id="user"),
        pytest.param(
            ConversationKey(-100123, thread_id=7, user_id=9),
            "yq",
            "yq:42:conv:-100123:t7:u9:history",
            id="thread-and-user",
        ),
        pytest.param(
            ConversationKey(5, thread_id=0), "yq", "yq:42:conv:5:t0:history", id="thread-zero-is-set"
        ),
        pytest.param(ConversationKey(5), "other", "other:42:conv:5:history", id="prefix"),
    ],
)
def test_history_key_format(key: ConversationKey, prefix: str, expected: str) -> None:
    """Keys follow the documented {prefix}:{bot}:conv:{chat}[:t{thread}][:u{user}]:history."""
    assert history_key(BOT_ID, key, prefix) == expected


def test_history_key_defaults_to_the_yq_prefix() -> None:
    """Without a prefix the key starts with "yq"."""
    assert history_key(BOT_ID, ConversationKey(5)) == "yq:42:conv:5:history"


def test_history_keys_are_distinct() -> None:
    """Different conversations always map to different keys."""
    keys = [history_key(BOT_ID, k) for k in _DISTINCT_KEYS]
    assert len(set(keys)) == len(keys)


# --- secret ---------------------------------------------------------------------------------


async def test_secret_is_created_once_and_shared(redis: Redis, redis_url: str) -> None:
    """The hashing secret is the same on a second call and for a second client (another replica)."""
    first = await load_or_create_secret(redis, bot_id=BOT_ID)
    assert len(first) >= 32
    assert await load_or_create_secret(redis, bot_id=BOT_ID) == first
    other = Redis.from_url(redis_url)
    try:
        assert await load_or_create_secret(other, bot_id=BOT_ID) == first
    finally:
        await other.aclose(close_connection_pool=True)


async def test_secret_differs_per_bot(redis: Redis) -> None:
    """Two bots sharing a Redis get different secrets."""
    assert await load_or_create_secret(redis, bot_id=1) != await load_or_create_secret(redis, bot_id=2)


# --- the package surface --------------------------------------------------------------------


def _public_definitions(package: Any) -> Iterable[str]:
    """Public classes and functions defined in the package's own modules."""
    for module_name in ("base", "keys", "limiter", "mailbox", "records", "redis", "semaphore", "usage"):
        module = getattr(package, module_name)
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == module.__name__
            if (
                not name.startswith("_")
                and defined_here
                and (inspect.isclass(value) or inspect.isfunction(value))
            ):
                yield name


def test_all_matches_the_exported_names() -> None:
    """storage.__all__ lists exactly the public non-module names the package exposes, once each."""
    exported = {
        name
        for name in dir(storage)
        if not name.startswith("_") and not inspect.ismodule(getattr(storage, name))
    }
    assert len(storage.__all__) == len(set(storage.__all__))
    assert set(storage.__all__) == exported


def test_all_covers_every_public_definition() -> None:
    """Every public class and function defined in storage's modules is re-exported by the package."""
    assert set(_public_definitions(storage)) <= set(storage.__all__)


# --- identity -------------------------------------------------------------------------------

SECRET = b"s" * 32


def test_user_id_is_stable() -> None:
    """The same conversation and secret always give the same Yuanqi user id."""
    assert user_id_for(SECRET, KEY) == user_id_for(SECRET, ConversationKey(KEY.chat_id, 7, 99))


def test_user_id_differs_per_conversation() -> None:
    """Every distinct chat/thread/user combination gets its own user id."""
    # Telegram never uses thread id 0; identity hashes it like "no thread".
    ids = [user_id_for(SECRET, k) for k in _DISTINCT_KEYS if k.thread_id != 0]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "chat_id", [-1001234567890, 987654321, 5550001], ids=["supergroup", "private", "short"]
)
def test_user_id_does_not_reveal_the_chat_id(chat_id: int) -> None:
    """The chat id's digits do not appear in the user id."""
    user_id = user_id_for(SECRET, ConversationKey(chat_id))
    assert str(abs(chat_id)) not in user_id


def test_user_id_depends_on_the_secret() -> None:
    """Another secret gives another user id for the same conversation."""
    assert user_id_for(SECRET, KEY) != user_id_for(b"t" * 32, KEY)
