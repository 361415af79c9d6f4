"""Time as a dependency, so tests can drive it instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (returns at once for zero or less)."""


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def sleep_unless(clock: Clock, seconds: float, event: asyncio.Event | None) -> None:
    """Sleep ``seconds`` by ``clock``, or only until ``event`` is set (at once if it already is)."""
    if event is None:
        await clock.sleep(seconds)
        return
    if event.is_set():
        return
    loop = asyncio.get_running_loop()
    pause, woken = loop.create_task(clock.sleep(seconds)), loop.create_task(event.wait())
    try:
        await asyncio.wait((pause, woken), return_when=asyncio.FIRST_COMPLETED)
    finally:
        pause.cancel()
        woken.cancel()
