"""The "typing…" indicator while the agent has not written anything yet."""

from __future__ import annotations

import asyncio
import contextlib

from bot.clock import Clock, sleep_unless
from bot.reply.ports import ReplyTarget, TargetError

TYPING_EVERY = 4.5  # Telegram shows "typing" for about 5 s


async def keep_typing(target: ReplyTarget, stop: asyncio.Event, clock: Clock) -> None:
    """Show "typing" until ``stop`` is set. It stops between calls and is never cancelled:
    httpcore 1.0.9 can lose a pool connection to a request cancelled while the pool is busy
    (encode/httpcore#1093), and under a burst that starved every later Bot API call."""
    with contextlib.suppress(TargetError):
        while not stop.is_set():
            await target.typing()
            await sleep_unless(clock, TYPING_EVERY, stop)
