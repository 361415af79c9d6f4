"""Stopping background tasks for good."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Task[Any]], *, again_after: float = 0.1) -> None:
    """Cancel ``tasks`` and return once every one has ended, its outcome retrieved.

    A task may swallow a cancellation: on Python 3.11, ``asyncio.wait_for`` (which redis-py wraps
    around socket writes) drops one that lands as the write completes. Such a task is cancelled
    again every ``again_after`` seconds, so shutting down never hangs on it.
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=again_after)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at collection
