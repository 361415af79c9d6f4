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
        self._held: set[str] = set()  # this replica's holders whose leases are kept
        self._keeper: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def hold(self, on_wait: Callable[[int], Awaitable[None]]) -> AsyncIterator[None]:
        holder = f"{self._replica}:{secrets.token_hex(6)}"
        with self._board.waiter() as waiter:
            await self._semaphore.acquire(holder, on_wait=on_wait, pause=waiter.pause)
        self._held.add(holder)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="slot-keeper")
        try:
            yield
        finally:
            self._held.discard(holder)
            with contextlib.suppress(StorageError):  # else the lease lapses within seconds
                await asyncio.shield(self._semaphore.release(holder))

    async def _keep(self) -> None:
        """Renew the leases of every slot held here, in one round trip, while any is held."""
        while True:
            await self._clock.sleep(self._semaphore.lease_ms / 3000)
            if not (holders := list(self._held)):
                return  # the next hold starts another keeper
            try:
                kept = await self._semaphore.renew_all(holders)
            except StorageError as exc:
                log.warning("could not renew the agent slots: %s", exc)
                continue
            for holder, ours in zip(holders, kept, strict=True):
                if not ours and holder in self._held:
                    log.warning("an agent slot's lease lapsed while the call ran")
                    self._held.discard(holder)
