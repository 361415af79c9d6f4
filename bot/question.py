"""What a turn is asked with, and the ports ChatService needs (agent, slots, usage book).

Value objects and small Protocols only, so handlers and tests can build a question, and the
composition root can plug real clients in, without importing the turn's machinery.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.agent.events import AgentEvent
from bot.tg.incoming import Attachment
from storage import ConversationKey, Turn


class Agent(Protocol):
    def stream_reply(
        self, user_id: str, messages: Sequence[dict[str, Any]]
    ) -> AsyncGenerator[AgentEvent, None]: ...


class AgentSlots(Protocol):
    def hold(self, on_wait: Callable[[int], Awaitable[None]]) -> AbstractAsyncContextManager[None]:
        """Hold one of the agent's call slots (shared by every replica) for the block's duration;
        while waiting, ``on_wait(ahead)`` is told how many waiters are ahead, when it changes."""


class UsageBook(Protocol):
    async def record(self, user_id: int, tokens: int) -> None:
        """Count an answer's tokens for the user (today and in total)."""


class StopWatch(Protocol):
    def watch(self, route: str, turn: int) -> AbstractContextManager[asyncio.Event]:
        """While the block runs, the Event is set when someone (on any replica) stops the turn."""


class Deferred(Exception):
    """The bot is shutting down: the turn is left, untouched, for another replica."""


@dataclass(frozen=True, slots=True)
class Question:
    key: ConversationKey
    text: str
    language: str | None
    attachments: tuple[Attachment, ...] = ()
    user_id: int | None = None  # who asked (quotas and usage are counted per Telegram user)
    replaces: Turn | None = None  # /retry: the stored turn whose answer is regenerated


@dataclass(frozen=True, slots=True)
class ChatLimits:
    max_messages: int
    max_chars: int
    max_input_chars: int
    interval_private: float
    interval_group: float
    max_images: int = 0

    def interval(self, chat_id: int) -> float:
        """Seconds between message operations: groups (negative ids) get the slower budget."""
        return self.interval_group if chat_id < 0 else self.interval_private


@dataclass(frozen=True, slots=True)
class Streaming:
    """How answers grow: native drafts in private chats ("auto"/"draft") or edits everywhere."""

    mode: Literal["auto", "edit", "draft"] = "edit"
    draft_interval: float = 0.5
    draft_keepalive: float = 20.0
    group_hold_chars: int = 0


EDITS = Streaming()  # edits everywhere: what ChatService does unless told otherwise
