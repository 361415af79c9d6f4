"""What a conversation is and what a history store must do; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """One conversation: a chat, optionally narrowed to a forum topic and to one member."""

    chat_id: int
    thread_id: int | None = None
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """A finished exchange: what the user asked and what the agent answered."""

    question: str
    answer: str
    at: float
    images: tuple[str, ...] = ()  # Telegram file ids of pictures the question carried


class HistoryStore(Protocol):
    """Rolling per-conversation history of finished turns."""

    async def load(self, key: ConversationKey) -> list[Turn]:
        """Return the stored turns, oldest first, and keep the conversation alive."""

    async def append(self, key: ConversationKey, turn: Turn) -> None:
        """Add a finished turn, dropping the oldest beyond the store's limit."""

    async def replace_last(self, key: ConversationKey, turn: Turn) -> None:
        """Put ``turn`` in place of the newest turn (a regenerated answer); append if there is none."""

    async def clear(self, key: ConversationKey) -> None:
        """Forget the conversation."""
