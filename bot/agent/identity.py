"""Pure: keyed hashes of a conversation, so neither the agent nor the logs see Telegram ids."""

from __future__ import annotations

import hashlib
import hmac

from storage import ConversationKey


def _digest(secret: bytes, label: str, key: ConversationKey) -> str:
    thread = "" if key.thread_id is None else key.thread_id
    user = "" if key.user_id is None else key.user_id
    material = f"{label}:{key.chat_id}:{thread}:{user}".encode()
    return hmac.new(secret, material, hashlib.sha256).hexdigest()


def user_id_for(secret: bytes, key: ConversationKey) -> str:
    """The Yuanqi ``user_id``: stable for a conversation, different between conversations."""
    return "tg_" + _digest(secret, "user", key)[:32]


def log_id(secret: bytes, key: ConversationKey) -> str:
    """A short tag that lets one conversation's log lines be followed."""
    return _digest(secret, "log", key)[:10]
