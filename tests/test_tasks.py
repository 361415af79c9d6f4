"""cancel_all: background tasks end for good, even one that swallows a cancellation."""

from __future__ import annotations

import asyncio

from bot.tasks import cancel_all


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    """As redis-py's wait_for can on Python 3.11: the first cancellation is lost, the second ends it."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed += 1  # and carries on
        await asyncio.Event().wait()

    loop = asyncio.get_running_loop()
    task = loop.create_task(stubborn())
    plain = loop.create_task(asyncio.Event().wait())
    failed = loop.create_task(asyncio.sleep(0, result=None))
    await asyncio.sleep(0)
    await cancel_all([task, plain, failed], again_after=0.01)
    assert task.cancelled() and plain.cancelled() and failed.done()
    assert swallowed == 1


async def test_a_failed_task_has_its_error_retrieved() -> None:
    """A task that already failed is left as it is, its exception retrieved (no warning at collection)."""

    async def boom() -> None:
        raise RuntimeError("boom")

    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)
    await cancel_all([task])
    assert isinstance(task.exception(), RuntimeError)
    assert task._log_traceback is False  # type: ignore[attr-defined]  # asyncio's "retrieved" flag
