"""The agent call behind a reply, watched: it ends, or is stopped because nobody can see the
reply any more or because the user stopped it (which closes the agent's stream at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from enum import Enum
from typing import Any

from bot.reply.live import LiveReply


class Ending(Enum):
    """How the agent call behind a reply ended."""

    ANSWERED = "answered"  # the agent's stream ran to its end (or raised its error)
    UNSEEN = "unseen"  # the reply could no longer be shown: the call was stopped
    STOPPED = "stopped"  # the user stopped the answer: the call was stopped


async def while_shown(
    live: LiveReply, work: Coroutine[Any, Any, None], stopped: asyncio.Event | None = None
) -> Ending:
    """Run ``work`` unless ``live`` dies or ``stopped`` is set first; then cancel it (closing the
    agent stream at once) and say why."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(work, name="agent-call")
    watches: list[asyncio.Task[Any]] = [loop.create_task(live.wait_dead(), name="reply-watch")]
    if stopped is not None:
        watches.append(loop.create_task(stopped.wait(), name="stop-watch"))
    try:
        await asyncio.wait((task, *watches), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also on cancellation (shutdown): no task outlives the turn
        for each in (task, *watches):
            each.cancel()
        await asyncio.gather(task, *watches, return_exceptions=True)
    if not task.cancelled():
        task.result()  # the agent's error, or Deferred
        return Ending.ANSWERED
    return Ending.STOPPED if stopped is not None and stopped.is_set() and not live.dead else Ending.UNSEEN
