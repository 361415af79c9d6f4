"""Conversation storage: the domain types, the key scheme and the Redis implementation."""

from storage.base import ConversationKey, HistoryStore, Turn
from storage.keys import alias_key, denied_key, history_key, secret_key
from storage.records import RecordError, dump_turn, load_turn
from storage.redis import RedisChatRegistry, RedisHistoryStore, load_or_create_secret

__all__ = [
    "ConversationKey",
    "HistoryStore",
    "RecordError",
    "RedisChatRegistry",
    "RedisHistoryStore",
    "Turn",
    "alias_key",
    "denied_key",
    "dump_turn",
    "history_key",
    "load_or_create_secret",
    "load_turn",
    "secret_key",
]
