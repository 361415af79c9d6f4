"""Pacing of message operations (sends and edits), and the pure edit-or-wait decision.

Telegram allows about one message operation per second in a chat, twenty a minute in a group
and thirty a second for the whole bot. Every operation the bot makes in a chat books the chat's
next free slot here, and reserves a bot-wide slot first; a 429 pushes the chat's next slot to
exactly ``retry_after`` from now, and other chats are never held up by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.render import Chunk


@dataclass(frozen=True, slots=True)
class Wait:
    until: float


@dataclass(frozen=True, slots=True)
class Push:
    """Show ``chunk`` as message number ``index`` (a send when no such message exists yet)."""

    index: int
    chunk: Chunk


Action = Wait | Push | None


def next_action(now: float, ready_at: float, shown: Sequence[Chunk], wanted: Sequence[Chunk]) -> Action:
    """What to do next: nothing (all shown), wait for the chat's slot, or push the first change."""
    for index, chunk in enumerate(wanted):
        if index >= len(shown) or shown[index] != chunk:
            return Wait(ready_at) if ready_at > now else Push(index, chunk)
    return None


class ChatPacer:
    """Next free operation slot per chat, shared by every reply in this process."""

    _PRUNE_EVERY = 1024

    def __init__(self, clock: Clock, per_second: float = 25.0) -> None:
        self._clock = clock
        self._next: dict[int, float] = {}
        self._ops = 0
        self._spacing = 1.0 / per_second
        self._global_next = 0.0

    def reserve_global(self) -> float:
        """Reserve the next bot-wide slot; returns the seconds to wait for it (0 when free now)."""
        now = self._clock.now()
        slot = max(now, self._global_next)
        self._global_next = slot + self._spacing
        return slot - now

    def ready_at(self, chat_id: int) -> float:
        return self._next.get(chat_id, 0.0)

    def spend(self, chat_id: int, interval: float) -> None:
        """Book an operation made now; the chat's next one waits ``interval``."""
        now = self._clock.now()
        self._next[chat_id] = max(self.ready_at(chat_id), now) + interval
        self._ops += 1
        if self._ops % self._PRUNE_EVERY == 0:
            self._next = {c: t for c, t in self._next.items() if t > now}

    def block(self, chat_id: int, seconds: float) -> None:
        """Telegram said wait: no operation in this chat before ``seconds`` from now."""
        self._next[chat_id] = max(self.ready_at(chat_id), self._clock.now() + seconds)
