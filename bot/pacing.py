"""Pacing of message operations (sends and edits), and the pure edit-or-wait decision.

Telegram allows about one message operation per second in a chat, twenty a minute in a group
and thirty a second for the whole bot. Every operation the bot makes in a chat books the chat's
next free slot here, after taking a bot-wide slot; a 429 pushes the chat's next slot to exactly
``retry_after`` from now, and other chats are never held up by it. Bot-wide slots go to the most
urgent operation first, so under a burst final answers are not stuck behind queue notices.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

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


class Priority(IntEnum):
    """Who gets the next bot-wide slot first (lowest value; equal values: first come first served)."""

    FINAL = 0  # the finished answer
    FIRST = 0  # the first words of an answer (an alias of FINAL: both are what users wait for)
    UPDATE = 2  # a streaming edit
    STATUS = 3  # "you are in the queue"


class GlobalBudget:
    """Bot-wide operation slots at a fixed rate, each granted to the most urgent waiter.

    A waiter's priority is asked for when a slot is free, so a reply waiting with a queue
    notice moves up as soon as its answer starts.
    """

    def __init__(self, clock: Clock, per_second: float) -> None:
        self._clock = clock
        self._spacing = 1.0 / per_second
        self._next = 0.0
        self._waiting: list[tuple[int, Callable[[], Priority], asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    async def acquire(self, priority: Callable[[], Priority]) -> None:
        now = self._clock.now()
        if not self._waiting and now >= self._next:
            self._next = now + self._spacing
            return
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        self._waiting.append((next(self._order), priority, granted))
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._grant(), name="global-budget")
        await granted

    async def _grant(self) -> None:
        while self._waiting:
            now = self._clock.now()
            if now < self._next:
                await self._clock.sleep(self._next - now)
                continue
            self._waiting = [w for w in self._waiting if not w[2].done()]  # drop cancelled waiters
            if not self._waiting:
                return
            best = min(self._waiting, key=lambda w: (w[1](), w[0]))
            self._waiting.remove(best)
            best[2].set_result(None)
            self._next = now + self._spacing


class ChatPacer:
    """Next free operation slot per chat, shared by every reply in this process."""

    _PRUNE_EVERY = 1024

    def __init__(self, clock: Clock, per_second: float = 25.0) -> None:
        self._clock = clock
        self._next: dict[int, float] = {}
        self._ops = 0
        self.budget = GlobalBudget(clock, per_second)

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
