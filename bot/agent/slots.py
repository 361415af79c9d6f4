"""Agent call slots shared by every replica: a Redis semaphore held under a renewed lease.

Waiting for a slot is paced by this replica's :class:`~bot.agent.wakeups.SlotBoard`: a waiter
polls when a release may have made it its turn, else once a heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from bot.agent.wakeups import SlotBoard
from bot.clock import Clock
from storage import StorageError
from storage.semaphore import RedisSemaphore

log = logging.getLogger(__name__)


class ClusterSlots:
    def __init__(self, semaphore: RedisSemaphore, clock: Clock, *, replica: str, board: SlotBoard) -> None:
        self._semaphore = semaphore
        self._clock = clock
        self._replica = replica
        self._board = board

    @contextlib.asynccontextmanager
    async def hold(self, on_wait: Callable[[int], Awaitable[None]]) -> AsyncIterator[None]:
        holder = f"{self._replica}:{secrets.token_hex(6)}"
        with self._board.waiter() as waiter:
            await self._semaphore.acquire(holder, on_wait=on_wait, pause=waiter.pause)
        keeper = asyncio.get_running_loop().create_task(self._keep(holder))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(StorageError):  # else the lease lapses within seconds
                await asyncio.shield(self._semaphore.release(holder))

    async def _keep(self, holder: str) -> None:
        while True:
            await self._clock.sleep(self._semaphore.lease_ms / 3000)
            try:
                if not await self._semaphore.renew(holder):
                    log.warning("an agent slot's lease lapsed while the call ran")
                    return
            except StorageError as exc:
                log.warning("could not renew an agent slot: %s", exc)
