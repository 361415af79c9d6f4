"""Pacing of message operations (sends and edits), and the pure edit-or-wait decision.

Telegram allows about one message operation per second in a chat (short bursts tolerated),
twenty a minute in a group and thirty a second for the whole bot. A chat's budget is a bucket of
``CHAT_BURST`` (2) operations refilled one per interval. Streaming operations keep one in
reserve, so they go at most once an interval; the final text of an answer may spend the reserve,
so it goes out as soon as the answer is complete instead of waiting up to an interval behind the
last edit. Every operation takes the chat's slot and a bot-wide slot, in one call to the book
when it can; a 429 holds the chat for exactly ``retry_after`` from now, and other chats are never
held up by it.

The bot-wide budget is a window: at most ``TELEGRAM_MAX_OPS_PER_SECOND`` operations in any second,
so answers that end together show their final texts together. The same rule of reserve applies:
streaming edits and queue notices leave a third of the window (``BOT_RESERVE_SHARE``) to what users
wait for (final texts, first words), and when slots are scarce the most urgent waiter goes first.

The slots themselves live in a :class:`SlotBook`: this process's own (:class:`MemorySlots`) or
one every replica shares (``bot.shared_pacing.SharedSlots``). Priorities stay local: each
process orders its own waiters, and the most urgent one asks the book for the next slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from bot.clock import Clock, sleep_unless
from bot.reply.render import Chunk

#: The shortest per-chat period booked: an interval of 0 still lets a 429 hold the chat.
MIN_PERIOD = 0.001
#: Operations a chat's bucket holds: one for streaming, one kept in reserve for the final text.
CHAT_BURST = 2
#: Telegram's bot-wide limit is a number of operations per second.
BOT_WINDOW = 1.0


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
    FIRST = 1  # the first words of an answer
    UPDATE = 2  # a streaming edit
    STATUS = 3  # "you are in the queue", a tool's progress


#: The share of the bot-wide window each kind of operation leaves to the more urgent ones. When
#: answers end together, their final texts and the next answers' first words come in a burst, and
#: the window must have room for them: streaming edits may fill two thirds of it, status lines
#: (queue positions, which change for every queued chat when slots free up) one third.
BOT_RESERVE_SHARE = {Priority.FINAL: 0.0, Priority.FIRST: 0.0, Priority.UPDATE: 1 / 3, Priority.STATUS: 2 / 3}


class SlotBook(Protocol):
    """Where operation slots are booked. A wait of 0.0 means "granted, and booked"."""

    async def take_chat(self, chat_id: int, period: float, *, reserve: int = 1) -> float:
        """Book an operation in the chat now, leaving ``reserve`` in its bucket (of ``CHAT_BURST``,
        refilled once a ``period``), or return the seconds to wait."""

    async def hold_chat(self, chat_id: int, seconds: float) -> None:
        """No operation in the chat before ``seconds`` from now; never moves its slot earlier."""

    def bot_wait(self, limit: int, *, reserve: int = 0) -> float:
        """What this process knows of ``take_bot``'s answer, without asking anyone: the seconds
        until a bot-wide operation leaving ``reserve`` may go (<= 0: now, as far as it knows)."""

    async def take_bot(self, limit: int, *, reserve: int = 0) -> float:
        """Book a bot-wide operation now if fewer than ``limit - reserve`` went in the last
        ``BOT_WINDOW``, or return the seconds until one may go."""

    async def take_both(
        self, chat_id: int, period: float, *, reserve: int, limit: int, bot_reserve: int
    ) -> tuple[float, float | None]:
        """``take_chat``, then (if granted) ``take_bot``, at once: (the chat's wait, the bot's
        wait, None when the chat refused)."""


class MemorySlots:
    """The slot book of this process alone: one replica's pacing, and a shared book's fallback."""

    _PRUNE_EVERY = 1024

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._allow: dict[int, float] = {}  # GCRA per chat: when an operation with no reserve may go
        self._bot_ops: deque[float] = deque()  # bot-wide grants in the last BOT_WINDOW
        self._ops = 0

    def chat_wait(self, chat_id: int, period: float, *, reserve: int = 1) -> float:
        """Seconds until an operation leaving ``reserve`` may go (<= 0: now); books nothing."""
        return self._allow_at(chat_id, period) + reserve * period - self._clock.now()

    def _allow_at(self, chat_id: int, period: float) -> float:
        idle = self._clock.now() - (CHAT_BURST - 1) * period  # a full bucket
        return max(self._allow.get(chat_id, idle), idle)

    async def take_chat(self, chat_id: int, period: float, *, reserve: int = 1) -> float:
        if (wait := self.chat_wait(chat_id, period, reserve=reserve)) > 0:
            return wait
        self._set(chat_id, self._allow_at(chat_id, period) + period)
        return 0.0

    async def hold_chat(self, chat_id: int, seconds: float) -> None:
        self._set(chat_id, max(self._allow.get(chat_id, 0.0), self._clock.now() + seconds))

    def bot_wait(self, limit: int, *, reserve: int = 0) -> float:
        """Seconds until a bot-wide operation leaving ``reserve`` may go (<= 0: now); books nothing."""
        now, ops = self._clock.now(), self._bot_ops
        while ops and ops[0] <= now - BOT_WINDOW:
            ops.popleft()
        room = limit - reserve
        if len(ops) >= room:
            return ops[len(ops) - room] + BOT_WINDOW - now
        if reserve and ops:  # what can wait is spread out (storage.limiter says why)
            return ops[-1] + BOT_WINDOW / limit - now
        return 0.0

    async def take_bot(self, limit: int, *, reserve: int = 0) -> float:
        if (wait := self.bot_wait(limit, reserve=reserve)) > 0:
            return wait
        self._bot_ops.append(self._clock.now())
        return 0.0

    async def take_both(
        self, chat_id: int, period: float, *, reserve: int, limit: int, bot_reserve: int
    ) -> tuple[float, float | None]:
        if (wait := await self.take_chat(chat_id, period, reserve=reserve)) > 0:
            return wait, None
        return 0.0, await self.take_bot(limit, reserve=bot_reserve)

    def _set(self, chat_id: int, allow_at: float) -> None:
        self._allow[chat_id] = allow_at
        self._ops += 1
        if self._ops % self._PRUNE_EVERY == 0:  # forget chats whose bucket has long been full
            horizon = self._clock.now() - 3600
            self._allow = {c: t for c, t in self._allow.items() if t > horizon}


@dataclass(slots=True)
class ChatClaim:
    """The chat slot a queued operation needs too: the one that grants it the bot-wide slot books
    both at once (``SlotBook.take_both``), one call instead of two."""

    chat_id: int
    period: float
    urgent: Callable[[], bool]  # may spend the chat's reserve
    booked: bool = False  # the chat's slot is taken; only the bot-wide one is still wanted


class GlobalBudget:
    """Bot-wide operation slots, at most ``per_second`` in any second, each to the most urgent waiter.

    Streaming edits and queue notices leave ``BOT_RESERVE_SHARE`` of the window to final texts
    and first words. A waiter's priority is asked for whenever a slot is looked for, so a reply
    waiting with a queue notice moves up as soon as its answer starts.
    """

    def __init__(self, clock: Clock, per_second: float, book: SlotBook | None = None) -> None:
        self._clock = clock
        self._book = book if book is not None else MemorySlots(clock)
        self._limit = max(1, int(per_second))
        self._reserves = {p: min(int(self._limit * share), self._limit - 1)
                          for p, share in BOT_RESERVE_SHARE.items()}
        self._waiting: list[_Waiter] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._urgent = asyncio.Event()  # a waiter came that may take a slot the pump may not
        self._pump_reserve = 0  # the reserve the pump is waiting to book with

    @property
    def limit(self) -> int:
        return self._limit

    def first_in_line(self, priority: Priority) -> bool:
        """Would an operation of ``priority`` be served before every one waiting here? Then it
        may take a slot without queueing (status lines starved by a busy window wait behind
        every streaming edit, final text and first words)."""
        return all(priority < w.priority() for w in self._waiting if not w.granted.done())

    def reserve_for(self, priority: Priority) -> int:
        """What an operation of ``priority`` leaves of the window: urgent ones nothing."""
        return self._reserves[priority]

    def nudge(self) -> None:
        """A waiter's priority rose (its answer started or ended): look for its slot again now."""
        if self._waiting:
            self._urgent.set()

    async def acquire(
        self, priority: Callable[[], Priority], *, refused: bool = False, chat: ChatClaim | None = None
    ) -> float:
        """Return 0.0 once a bot-wide slot is booked for this operation (and ``chat``'s slot, when
        given: then the chat may refuse, and the seconds it asks to wait are returned instead).
        ``refused``: the book just said no (so go straight into the queue)."""
        now = priority()
        reserve = self.reserve_for(now)
        if not refused and chat is None and self.first_in_line(now) and (
            await self._book.take_bot(self._limit, reserve=reserve) == 0.0
        ):
            return 0.0
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[float] = loop.create_future()
        self._waiting.append(_Waiter(next(self._order), priority, granted, chat))
        if reserve < self._pump_reserve:
            self._urgent.set()
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._grant(), name="global-budget")
        return await granted

    async def _grant(self) -> None:
        try:
            while self._live():
                self._urgent.clear()
                best = self._best()
                self._pump_reserve = self.reserve_for(best.priority())
                claim = best.chat
                if claim is not None and not claim.booked:
                    if (soon := self._book.bot_wait(self._limit, reserve=self._pump_reserve)) > 0:
                        await sleep_unless(self._clock, soon, self._urgent)  # known without asking
                        continue
                    chat_wait, maybe = await self._book.take_both(
                        claim.chat_id, claim.period, reserve=0 if claim.urgent() else 1,
                        limit=self._limit, bot_reserve=self._pump_reserve,
                    )
                    if chat_wait > 0:  # the chat refused (a 429, another replica): it waits, not we
                        self._done(best, chat_wait)
                        continue
                    claim.booked = True
                    if maybe is None:  # booked the chat alone: the bot-wide slot next time round
                        continue
                    if (wait := maybe) <= 0:
                        self._done(best, 0.0)  # both slots are its own
                        continue
                else:
                    wait = await self._book.take_bot(self._limit, reserve=self._pump_reserve)
                    if wait <= 0:
                        if self._live() and (who := self._ready()) is not None:  # (waiters may leave)
                            self._done(who, 0.0)
                        continue
                await sleep_unless(self._clock, wait, self._urgent)
        except Exception as exc:  # a broken book must not leave the waiters hanging
            for waiter in self._waiting:
                if not waiter.granted.done():
                    waiter.granted.set_exception(exc)
            self._waiting.clear()
        finally:
            self._pump_reserve = 0

    def _ready(self) -> _Waiter | None:
        """The most urgent waiter a bot-wide slot alone serves (none whose chat's slot is still to
        be booked: that one is booked with both, by :meth:`_grant`)."""
        ready = (w for w in self._waiting if w.chat is None or w.chat.booked)
        return min(ready, key=_Waiter.rank, default=None)

    def _done(self, waiter: _Waiter, wait: float) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiter)
        if not waiter.granted.done():
            waiter.granted.set_result(wait)

    def _best(self) -> _Waiter:
        return min(self._waiting, key=_Waiter.rank)

    def _live(self) -> bool:
        """Drop cancelled waiters; is anyone still waiting?"""
        self._waiting = [w for w in self._waiting if not w.granted.done()]
        return bool(self._waiting)


@dataclass(slots=True)
class _Waiter:
    order: int
    priority: Callable[[], Priority]
    granted: asyncio.Future[float]
    chat: ChatClaim | None

    def rank(self) -> tuple[Priority, int]:
        """Served in this order: the most urgent first, then first come."""
        return self.priority(), self.order


class ChatPacer:
    """Per-chat and bot-wide operation slots for every reply here (with a shared book: every replica)."""

    def __init__(self, clock: Clock, per_second: float = 25.0, *, book: SlotBook | None = None) -> None:
        self._clock = clock
        self._book = book if book is not None else MemorySlots(clock)
        self._budget = GlobalBudget(clock, per_second, self._book)

    async def slot(
        self, chat_id: int, interval: float, priority: Callable[[], Priority], *,
        urgent: Callable[[], bool] = lambda: False, wake: asyncio.Event | None = None,
    ) -> float:
        """Wait for the chat's turn, then for a bot-wide slot; book both and return the time (now).

        An operation no one here goes before books both at once; when only the bot-wide slot is
        refused, its chat's turn stays booked while it waits, so nothing else goes in the chat (on
        any replica) meanwhile. One queued behind others has both booked by whoever grants it the
        bot-wide slot, in one call (its chat's reply sends nothing else while it waits). An
        ``urgent`` operation (an answer's final text, or its first words) may spend the chat's
        reserve; ``wake`` (set when it may have become urgent) makes a waiting operation ask again
        at once.
        """
        period = max(interval, MIN_PERIOD)
        budget = self._budget
        while True:
            now_urgent = urgent()
            reserve = 0 if now_urgent else 1
            now_priority = priority()
            if budget.first_in_line(now_priority):  # no one here goes first: ask for both at once
                wait, bot = await self._book.take_both(
                    chat_id, period, reserve=reserve, limit=budget.limit,
                    bot_reserve=budget.reserve_for(now_priority),
                )
                if wait <= 0:
                    if bot != 0.0:  # the chat is booked; the bot-wide slot comes in turn
                        await budget.acquire(priority, refused=bot is not None)
                    return self._clock.now()
            else:  # in the queue; whoever grants the bot-wide slot books the chat's with it
                wait = await budget.acquire(priority, chat=ChatClaim(chat_id, period, urgent))
                if wait <= 0:
                    return self._clock.now()
            await sleep_unless(self._clock, wait, None if now_urgent else wake)

    def nudge(self) -> None:
        """An operation waiting here became more urgent (see :meth:`GlobalBudget.nudge`)."""
        self._budget.nudge()

    async def block(self, chat_id: int, seconds: float) -> None:
        """Telegram said wait: no operation in this chat before ``seconds`` from now."""
        await self._book.hold_chat(chat_id, seconds)
