"""Conversation storage: the domain types, the key scheme and the Redis implementation."""

from storage.base import ConversationKey, HistoryStore, Turn
from storage.keys import history_key, secret_key
from storage.records import RecordError, dump_turn, load_turn
from storage.redis import RedisHistoryStore, load_or_create_secret

__all__ = [
    "ConversationKey",
    "HistoryStore",
    "RecordError",
    "RedisHistoryStore",
    "Turn",
    "dump_turn",
    "history_key",
    "load_or_create_secret",
    "load_turn",
    "secret_key",
]
