"""Pure: which chat's mailbox a raw update belongs to, and which mailbox items form one turn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ALBUM_MAX = 10  # Telegram albums hold at most ten items
COMBINE_MAX = 50  # messages folded into one turn at most (the rest make the next turn)
NO_CHAT = "none"  # updates without a chat share one mailbox
STOP_DATA = "stop"  # the callback data of the Stop button under a streaming answer

_MESSAGE_FIELDS = ("message", "edited_message", "channel_post", "edited_channel_post",
                   "business_message")


def _chat_of(update: Mapping[str, Any]) -> Any:
    for name in _MESSAGE_FIELDS:
        if isinstance(message := update.get(name), dict):
            return message.get("chat")
    query = update.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        return query["message"].get("chat")
    for name in ("my_chat_member", "chat_member", "chat_join_request", "stopped_message_generation"):
        if isinstance(event := update.get(name), dict):
            return event.get("chat")
    return None


def route_of(update: Mapping[str, Any]) -> str:
    """The mailbox of an update: its chat's id, so one chat's updates are handled in order."""
    chat = _chat_of(update)
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return str(chat_id) if isinstance(chat_id, int) and not isinstance(chat_id, bool) else NO_CHAT


def asker_of(update: Mapping[str, Any]) -> int | None:
    """Who sent an update's message (None for updates without a sender)."""
    message = update.get("message")
    sender = message.get("from") if isinstance(message, dict) else None
    user = sender.get("id") if isinstance(sender, dict) else None
    return user if isinstance(user, int) and not isinstance(user, bool) else None


def is_stop(update: Mapping[str, Any]) -> bool:
    """A request to stop the answer being written: Telegram's draft stop button, our inline
    Stop button, or /stop. It must not wait in the chat's mailbox behind that very answer."""
    if isinstance(update.get("stopped_message_generation"), dict):
        return True
    query = update.get("callback_query")
    if isinstance(query, dict):
        return str(query.get("data") or "").startswith(STOP_DATA)
    message = update.get("message")
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text.startswith("/"):
        return False
    return text.split(maxsplit=1)[0].partition("@")[0].lower() == "/stop"


def button_data(turn: int) -> str:
    """The Stop button's callback data: it names the turn, so a late tap stops nothing newer."""
    return f"{STOP_DATA}:{turn}"


def turn_of(data: str | None) -> int:
    """The turn a Stop button names (-1, no turn, for data that names none)."""
    _, _, turn = (data or "").partition(":")
    return int(turn) if turn.isdigit() else -1


def update_id_of(update: Mapping[str, Any]) -> int | None:
    value = update.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def media_group_of(update: Mapping[str, Any]) -> str | None:
    message = update.get("message")
    group = message.get("media_group_id") if isinstance(message, dict) else None
    return group if isinstance(group, str) and group else None


def album(updates: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indexes of the updates that join the first one's album (the first included), at most ten."""
    group = media_group_of(updates[0]) if updates else None
    if group is None:
        return [0] if updates else []
    return [i for i, u in enumerate(updates) if media_group_of(u) == group][:ALBUM_MAX]


def _plain(update: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message of an update that could join others in one turn: text only, not a command."""
    message = update.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return None
    if message["text"].startswith("/") or message.get("media_group_id"):
        return None
    return message


def _sender(message: Mapping[str, Any]) -> tuple[Any, Any]:
    sender = message.get("from")
    return (sender.get("id") if isinstance(sender, dict) else None, message.get("message_thread_id"))


def combined(updates: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indexes of the run of plain text messages, from one sender in one topic, that starts the
    mailbox: they were sent while the chat's last turn ran and make its next turn together."""
    head = _plain(updates[0]) if updates else None
    if head is None:
        return [0] if updates else []
    picked = [0]
    for i, update in enumerate(updates[1:COMBINE_MAX], start=1):
        message = _plain(update)
        if message is None or _sender(message) != _sender(head):
            break
        picked.append(i)
    return picked


def album_settled(arrivals_ms: Sequence[int], now_ms: int, wait_ms: int) -> int:
    """Milliseconds still to wait for more parts of an album (0: it is complete)."""
    if len(arrivals_ms) >= ALBUM_MAX:
        return 0
    return max(0, max(arrivals_ms) + wait_ms - now_ms)
