"""Every Redis key the project uses, built in one place.

Scheme (general to specific, colon-joined)::

    {prefix}:{bot_id}:conv:{chat_id}[:t{thread_id}][:u{user_id}]:history   list of turn records
    {prefix}:{bot_id}:secret                                             user-id hashing secret
    {prefix}:{bot_id}:alias:{chat_id}                                    a migrated group's old id
    {prefix}:{bot_id}:denied:{chat_id}                                   "not allowed" was said here
"""

from __future__ import annotations

from storage.base import ConversationKey

DEFAULT_PREFIX = "yq"


def history_key(bot_id: int, key: ConversationKey, prefix: str = DEFAULT_PREFIX) -> str:
    parts = [prefix, str(bot_id), "conv", str(key.chat_id)]
    if key.thread_id is not None:
        parts.append(f"t{key.thread_id}")
    if key.user_id is not None:
        parts.append(f"u{key.user_id}")
    parts.append("history")
    return ":".join(parts)


def secret_key(bot_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:secret"


def alias_key(bot_id: int, chat_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:alias:{chat_id}"


def denied_key(bot_id: int, chat_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:denied:{chat_id}"
