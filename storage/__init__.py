"""Everything kept in Redis: conversations, and the primitives replicas coordinate through."""

from storage.base import ConversationKey, HistoryStore, Turn
from storage.client import Connection, StorageError, close, connect, server_version
from storage.keys import (
    alias_key,
    all_day_key,
    all_total_key,
    chat_key,
    denied_key,
    history_key,
    pending_key,
    rate_key,
    secret_key,
    stop_channel,
    user_day_key,
    user_total_key,
)
from storage.limiter import RedisRateLimiter
from storage.mailbox import Item, Peek, RedisMailbox
from storage.records import RecordError, dump_turn, load_turn
from storage.redis import RedisChatRegistry, RedisHistoryStore, load_or_create_secret
from storage.semaphore import RedisSemaphore, Ticket, freed_channel, semaphore_key
from storage.signals import RedisStopSignals
from storage.subscription import Messages, subscription
from storage.usage import Admission, RedisUsage, Usage, seconds_to_utc_midnight, utc_day

__all__ = [
    "Admission",
    "Connection",
    "ConversationKey",
    "HistoryStore",
    "Item",
    "Messages",
    "Peek",
    "RecordError",
    "RedisChatRegistry",
    "RedisHistoryStore",
    "RedisMailbox",
    "RedisRateLimiter",
    "RedisSemaphore",
    "RedisStopSignals",
    "RedisUsage",
    "StorageError",
    "Ticket",
    "Turn",
    "Usage",
    "alias_key",
    "all_day_key",
    "all_total_key",
    "chat_key",
    "close",
    "connect",
    "denied_key",
    "dump_turn",
    "freed_channel",
    "history_key",
    "load_or_create_secret",
    "load_turn",
    "pending_key",
    "rate_key",
    "seconds_to_utc_midnight",
    "secret_key",
    "semaphore_key",
    "server_version",
    "stop_channel",
    "subscription",
    "user_day_key",
    "user_total_key",
    "utc_day",
]
