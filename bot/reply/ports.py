"""What a live reply talks to and how it is told to look: the target's small error set, the
target itself, the reply's statistics, and its look (a draft, a Stop button, a hold)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.reply.render import Chunk


class TargetError(Exception):
    """A message operation failed."""


class RateLimited(TargetError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class MessageGone(TargetError):
    """The message to edit no longer exists (the user deleted it)."""


class ChatUnavailable(TargetError):
    """The bot can no longer write to this chat (blocked, kicked, chat deleted)."""


class TransientFailure(TargetError):
    """A network hiccup or an unexpected refusal; worth another try later."""


class ReplyTarget(Protocol):
    """Where a reply's messages go: one chat (and topic), replying to one message."""

    chat_id: int

    async def send(self, chunk: Chunk) -> int:
        """Send a new message; return its id."""

    async def edit(self, message_id: int, chunk: Chunk) -> None:
        """Replace a message's text; an unchanged text counts as success."""

    async def delete(self, message_id: int) -> None: ...

    async def typing(self) -> None: ...

    async def draft(self, draft_id: int, chunk: Chunk) -> None:
        """Show ``chunk`` as the chat's native draft (private chats), with a stop button."""


@dataclass(frozen=True, slots=True)
class Draft:
    """Stream into a native draft: its id, the seconds between updates, and when to refresh it."""

    draft_id: int
    interval: float
    keepalive: float


@dataclass(frozen=True, slots=True)
class Look:
    """How a reply grows: a Stop button under the streaming message (label, callback data), the
    characters an answer must reach before it is shown mid-stream, or a native draft."""

    button: tuple[str, str] | None = None
    hold: int = 0
    draft: Draft | None = None


@dataclass(slots=True)
class ReplyStats:
    sends: int = 0
    edits: int = 0
    drafts: int = 0
    rate_limited: int = 0
    first_text: float | None = None  # the first words of the answer
    final_shown: float | None = None


PLAIN = Look()  # edits, no Stop button, no hold: notices and marked answers
