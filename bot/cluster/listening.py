"""One replica's subscription to a channel every replica announces on, kept up for good.

The stop board and the agent-slot board each hold one: subscribe, say so, hand over what is
heard; when the subscription ends or fails, say so, wait a backoff and subscribe again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from bot.clock import Clock
from storage import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between resubscription attempts; the last one repeats.
BACKOFF = (0.5, 1.0, 2.0, 4.0)


async def keep_listening(
    listen: Callable[[], AbstractAsyncContextManager[AsyncIterator[T]]],
    heard: Callable[[T], None],
    *,
    subscribed: asyncio.Event,
    clock: Clock,
    what: str,
    backoff: Sequence[float] = BACKOFF,
    ready: Callable[[], Awaitable[None]] | None = None,
    lost: Callable[[], None] | None = None,
) -> None:
    """Listen forever. Once subscribed, ``ready()`` runs (to make up for what went unheard) and
    then ``subscribed`` is set; each item goes to ``heard``; when a subscription that was set up
    ends, ``subscribed`` is cleared and ``lost()`` runs. Never returns; cancel it to stop."""
    delays = tuple(backoff) or BACKOFF
    failures = 0
    while True:
        try:
            async with listen() as items:
                if ready is not None:
                    await ready()  # after subscribing: nothing falls between the two
                subscribed.set()
                failures = 0
                async for item in items:
                    heard(item)
            log.warning("the %s subscription ended; subscribing again", what)
        except StorageError as exc:
            log.warning("the %s subscription failed: %s", what, exc)
        except Exception:
            log.exception("the %s listener failed; subscribing again", what)
        finally:
            if subscribed.is_set():
                subscribed.clear()
                if lost is not None:
                    lost()
        await clock.sleep(delays[min(failures, len(delays) - 1)])
        failures += 1


def log_death(task: asyncio.Task[None]) -> None:
    """A done callback: log a background task that ended with an error."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task %s died", task.get_name(), exc_info=exc)
