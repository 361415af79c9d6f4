"""Every Redis key the project uses, built in one place.

Scheme (general to specific, colon-joined)::

    {prefix}:{bot_id}:conv:{chat_id}[:t{thread_id}][:u{user_id}]:history   list of turn records
    {prefix}:{bot_id}:secret                                             user-id hashing secret
    {prefix}:{bot_id}:alias:{chat_id}                                    a migrated group's old id
    {prefix}:{bot_id}:denied:{chat_id}                                   "not allowed" was said here

Coordination keys of one chat share the hash tag ``{c:<chat_id>}`` (Redis Cluster runs a script
only on keys of one slot)::

    {prefix}:{bot_id}:{c:<chat_id>}:mail     list of recorded updates, oldest first
    {prefix}:{bot_id}:{c:<chat_id>}:lease    the replica draining the mailbox (PX lease)
    {prefix}:{bot_id}:{c:<chat_id>}:seen     update ids recorded in the last day (dedupe)
    {prefix}:{bot_id}:{c:<chat_id>}:turn     how far the answer to the head update got
    {prefix}:{bot_id}:{pending}              chats that received mail (the sweepers' index)
    {prefix}:{bot_id}:{pending}:seq          its counter

Other shared primitives (their key functions live with them or below)::

    {prefix}:{bot_id}:{agent}:holders|queue|alive   agent call semaphore (storage/semaphore.py)
    {prefix}:{bot_id}:agent-freed                   channel: a slot was freed (the same)
    {prefix}:{bot_id}:{rl}:c:<chat>|bot            Telegram budgets: GCRA, window (storage/limiter.py)
    {prefix}:{bot_id}:usage:{u:<user>}:d<date>|total per-user tokens; usage:all:... the bot's
    {prefix}:{bot_id}:rate:{u:<user>}               the user's messages in the last minute
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


def chat_key(bot_id: int, route: str, part: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:{{c:{route}}}:{part}"


def pending_key(bot_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:{{pending}}"


def user_day_key(bot_id: int, user_id: int, day: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:usage:{{u:{user_id}}}:d{day}"


def user_total_key(bot_id: int, user_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:usage:{{u:{user_id}}}:total"


def all_day_key(bot_id: int, day: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:usage:all:d{day}"


def all_total_key(bot_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:usage:all:total"


def rate_key(bot_id: int, user_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{bot_id}:rate:{{u:{user_id}}}"


def stop_channel(bot_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The pub/sub channel stops are announced on: one per bot, every replica subscribes once."""
    return f"{prefix}:{bot_id}:stops"
