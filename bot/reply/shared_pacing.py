"""Pacing slots shared by every replica: Redis limits, with this process's own book as fallback.

Keys (``storage.limiter``): one GCRA per chat, its period the chat's interval and its burst
``CHAT_BURST``, so every replica together keeps EDIT_INTERVAL_PRIVATE / EDIT_INTERVAL_GROUP apart;
one window for the whole bot, at most TELEGRAM_MAX_OPS_PER_SECOND operations in any second. An
operation books both in one round trip (``take_both``). A 429 holds the chat's key, so every
replica waits out ``retry_after``. Groups get no separate 20/min key: every operation in a group
already goes through its chat key at the group interval (3 s, which is 20 a minute).

Pacing never fails a reply because of Redis: while Redis errs or takes longer than ``timeout``,
this replica books in its own :class:`MemorySlots` (warning once per outage) and asks Redis again
after ``recheck`` seconds. Slots granted by Redis are copied there too, so a fallback starts from
what this replica last did rather than from an empty book; and while that copy says this replica's
own last operation still holds a chat (or the bot), Redis is not asked at all: it would only answer
a wait too. That saves a refused round trip on nearly every streaming edit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.clock import Clock
from bot.reply.pacing import CHAT_BURST, MemorySlots
from storage import StorageError
from storage.limiter import RedisRateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")


class SharedSlots:
    """A :class:`bot.pacing.SlotBook` in Redis, used by every replica of the bot."""

    def __init__(
        self, limiter: RedisRateLimiter, clock: Clock, *, timeout: float = 0.5, recheck: float = 2.0
    ) -> None:
        self._limiter = limiter
        self._clock = clock
        self._local = MemorySlots(clock)
        self._timeout = timeout
        self._recheck = recheck
        self._down_until: float | None = None  # set while Redis is not answering

    async def take_chat(self, chat_id: int, period: float, *, reserve: int = 1) -> float:
        if (wait := self._local.chat_wait(chat_id, period, reserve=reserve)) > 0:
            return wait  # this replica's own last operation (or a 429 it met): Redis would say wait too
        key = self._limiter.chat(chat_id)
        shared = await self._shared(lambda: self._limiter.acquire(
            key, period=period, burst=CHAT_BURST, reserve=reserve
        ))
        if shared is None:
            return await self._local.take_chat(chat_id, period, reserve=reserve)
        if shared == 0.0:
            await self._local.take_chat(chat_id, period, reserve=0)  # the copy books what Redis did
        return shared

    async def hold_chat(self, chat_id: int, seconds: float) -> None:
        await self._local.hold_chat(chat_id, seconds)
        key = self._limiter.chat(chat_id)
        await self._shared(lambda: self._limiter.block(key, seconds))

    def bot_wait(self, limit: int, *, reserve: int = 0) -> float:
        return self._local.bot_wait(limit, reserve=reserve)  # this replica's own grants, copied

    async def take_bot(self, limit: int, *, reserve: int = 0) -> float:
        if (wait := self._local.bot_wait(limit, reserve=reserve)) > 0:
            return wait  # this replica's own operations fill the window: Redis would say wait too
        key = self._limiter.bot()
        shared = await self._shared(lambda: self._limiter.window(key, limit=limit, reserve=reserve))
        if shared is None:
            return await self._local.take_bot(limit, reserve=reserve)
        if shared == 0.0:
            await self._local.take_bot(limit)  # the copy books what Redis did
        return shared

    async def take_both(
        self, chat_id: int, period: float, *, reserve: int, limit: int, bot_reserve: int
    ) -> tuple[float, float | None]:
        if (wait := self._local.chat_wait(chat_id, period, reserve=reserve)) > 0:
            return wait, None
        if self._local.bot_wait(limit, reserve=bot_reserve) > 0:  # the bot's window is full here
            return await self.take_chat(chat_id, period, reserve=reserve), None
        chat, bot = self._limiter.chat(chat_id), self._limiter.bot()
        shared = await self._shared(lambda: self._limiter.take(
            chat, bot, period=period, burst=CHAT_BURST, reserve=reserve, limit=limit,
            bot_reserve=bot_reserve,
        ))
        if shared is None:
            return await self._local.take_both(
                chat_id, period, reserve=reserve, limit=limit, bot_reserve=bot_reserve
            )
        if shared[0] == 0.0:  # the copy books what Redis did
            await self._local.take_chat(chat_id, period, reserve=0)
            if shared[1] == 0.0:
                await self._local.take_bot(limit)
        return shared

    async def _shared(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """``call()`` on Redis, or None while Redis does not answer."""
        if self._down_until is not None and self._clock.now() < self._down_until:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                result = await call()
        except (StorageError, OSError) as exc:  # OSError covers the timeout
            if self._down_until is None:
                log.warning("Redis is not answering; pacing this replica on its own: %r", exc)
            self._down_until = self._clock.now() + self._recheck
            return None
        if self._down_until is not None:
            log.info("Redis answers again; pacing is shared by all replicas again")
            self._down_until = None
        return result
