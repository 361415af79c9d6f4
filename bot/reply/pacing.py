"""Pacing of message operations (sends and edits), and the pure edit-or-wait decision.

Telegram allows about one message operation per second in a chat, twenty a minute in a group
and thirty a second for the whole bot. Every operation the bot makes in a chat first takes the
chat's slot, then a bot-wide slot, and once made books the chat's next slot an interval after its
end; a 429 holds the chat for exactly ``retry_after`` from now, and other chats are never held up
by it. Bot-wide slots go to the most urgent operation first, so under a burst final answers are
not stuck behind queue notices.

The slots themselves live in a :class:`SlotBook`: this process's own (:class:`MemorySlots`) or
one every replica shares (``bot.shared_pacing.SharedSlots``). Priorities stay local: each
process orders its own waiters, and the most urgent one asks the book for the next slot.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from bot.clock import Clock
from bot.reply.render import Chunk

#: The shortest per-chat period booked: an interval of 0 still lets a 429 hold the chat.
MIN_PERIOD = 0.001


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


class SlotBook(Protocol):
    """Where operation slots are booked. A wait of 0.0 means "granted, and booked"."""

    async def take_chat(self, chat_id: int, period: float) -> float:
        """Book an operation in the chat now (its next waits ``period``), or return the seconds to wait."""

    async def hold_chat(self, chat_id: int, seconds: float) -> None:
        """No operation in the chat before ``seconds`` from now; never moves its slot earlier."""

    async def take_bot(self, period: float) -> float:
        """Book a bot-wide operation now (the next waits ``period``), or return the seconds to wait."""


class MemorySlots:
    """The slot book of this process alone: one replica's pacing, and a shared book's fallback."""

    _PRUNE_EVERY = 1024

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._next: dict[int, float] = {}
        self._bot_next = 0.0
        self._ops = 0

    def ready_at(self, chat_id: int) -> float:
        return self._next.get(chat_id, 0.0)

    async def take_chat(self, chat_id: int, period: float) -> float:
        now = self._clock.now()
        if (wait := self.ready_at(chat_id) - now) > 0:
            return wait
        self._set(chat_id, now + period, now)
        return 0.0

    async def hold_chat(self, chat_id: int, seconds: float) -> None:
        now = self._clock.now()
        self._set(chat_id, max(self.ready_at(chat_id), now + seconds), now)

    def bot_ready_at(self) -> float:
        return self._bot_next

    async def take_bot(self, period: float) -> float:
        now = self._clock.now()
        if (wait := self._bot_next - now) > 0:
            return wait
        self._bot_next = now + period
        return 0.0

    def _set(self, chat_id: int, ready_at: float, now: float) -> None:
        self._next[chat_id] = ready_at
        self._ops += 1
        if self._ops % self._PRUNE_EVERY == 0:  # forget the chats whose slot has passed
            self._next = {c: t for c, t in self._next.items() if t > now}


class GlobalBudget:
    """Bot-wide operation slots at a fixed rate, each granted to the most urgent waiter.

    A waiter's priority is asked for when a slot is free, so a reply waiting with a queue
    notice moves up as soon as its answer starts.
    """

    def __init__(self, clock: Clock, per_second: float, book: SlotBook | None = None) -> None:
        self._clock = clock
        self._book = book if book is not None else MemorySlots(clock)
        self._period = 1.0 / per_second
        self._waiting: list[tuple[int, Callable[[], Priority], asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    async def acquire(self, priority: Callable[[], Priority]) -> None:
        if not self._waiting and await self._book.take_bot(self._period) == 0.0:
            return
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        self._waiting.append((next(self._order), priority, granted))
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._grant(), name="global-budget")
        await granted

    async def _grant(self) -> None:
        try:
            while self._live():
                if (wait := await self._book.take_bot(self._period)) > 0:
                    await self._clock.sleep(wait)
                elif self._live():  # a waiter may have left while the slot was being booked
                    best = min(self._waiting, key=lambda w: (w[1](), w[0]))
                    self._waiting.remove(best)
                    best[2].set_result(None)
        except Exception as exc:  # a broken book must not leave the waiters hanging
            for _, _, granted in self._waiting:
                if not granted.done():
                    granted.set_exception(exc)
            self._waiting.clear()

    def _live(self) -> bool:
        """Drop cancelled waiters; is anyone still waiting?"""
        self._waiting = [w for w in self._waiting if not w[2].done()]
        return bool(self._waiting)


class ChatPacer:
    """Per-chat and bot-wide operation slots for every reply here (with a shared book: every replica)."""

    def __init__(self, clock: Clock, per_second: float = 25.0, *, book: SlotBook | None = None) -> None:
        self._clock = clock
        self._book = book if book is not None else MemorySlots(clock)
        self._budget = GlobalBudget(clock, per_second, self._book)

    async def slot(self, chat_id: int, interval: float, priority: Callable[[], Priority]) -> float:
        """Wait for the chat's turn, then for a bot-wide slot; book both and return the time (now).

        The chat's turn is booked first, so nothing else goes in the chat (on any replica) while
        this operation waits for the bot-wide slot and is made; ``spend`` then books its end.
        """
        period = max(interval, MIN_PERIOD)
        while (wait := await self._book.take_chat(chat_id, period)) > 0:
            await self._clock.sleep(wait)
        await self._budget.acquire(priority)
        return self._clock.now()

    async def spend(self, chat_id: int, interval: float) -> None:
        """An operation in the chat has just been made: the next one waits ``interval`` from now."""
        await self._book.hold_chat(chat_id, interval)

    async def block(self, chat_id: int, seconds: float) -> None:
        """Telegram said wait: no operation in this chat before ``seconds`` from now."""
        await self._book.hold_chat(chat_id, seconds)
