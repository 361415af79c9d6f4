"""The dispatcher: records updates in Redis mailboxes and drains the chats whose lease it holds.

Whichever replica receives an update records it; whichever replica holds the chat's lease works
through the chat's mailbox in order, one turn at a time. Every replica also sweeps for chats
whose holder died and takes them over (see ``storage.mailbox``). On shutdown it stops taking
new turns, lets turns in flight finish within a grace period, marks the rest interrupted and
gives its leases back, so the mail it leaves is answered by another replica or the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.clock import Clock
from bot.cluster import routing, turns
from bot.cluster.turns import Journal, Recovery, TurnRecord
from bot.tasks import cancel_all
from storage import StorageError
from storage.mailbox import Item, Peek

log = logging.getLogger(__name__)

STOP_MARKING_SECONDS = 5.0  # at shutdown, to mark cut answers after the grace period
WINDOW = routing.COMBINE_MAX  # mailbox items read at once: enough for a whole combined turn


class Mailbox(Protocol):
    lease_ms: int

    async def record(self, route: str, update_id: int, body: str, token: str) -> int | None: ...
    async def next(self, route: str, token: str, window: int = 10) -> Peek | None: ...
    async def save_turn(self, route: str, token: str, turn: str) -> bool: ...
    async def done(self, route: str, token: str, items: Sequence[Item]) -> bool: ...
    async def renew_all(self, held: Sequence[tuple[str, str]]) -> list[bool]: ...
    async def release(self, route: str, token: str) -> None: ...
    async def pending(self, limit: int = 200) -> list[tuple[str, int]]: ...
    async def claim_all(self, rows: Sequence[tuple[str, int, str]]) -> list[bool]: ...


@dataclass(frozen=True, slots=True)
class Work:
    """One turn's updates (an album's parts together), oldest first."""

    route: str
    updates: tuple[dict[str, Any], ...]


class Worker(Protocol):
    async def process(self, work: Work) -> None:
        """Handle the updates (the bot's handlers run here); never raises for bot trouble."""

    async def recover(self, work: Work, record: TurnRecord, action: Recovery) -> None:
        """Finish what a replica that died left: mark, clean up before a retry, or apologise."""

    async def urgent(self, update: Mapping[str, Any]) -> None:
        """Handle an update at once, beside the chat's queue (a stop for the answer in flight)."""


class LeaseLost(Exception):
    """Another replica holds the chat now."""


@dataclass(slots=True)
class _Held:
    """A chat lease this replica holds: its token, the task draining the chat, when last renewed."""

    token: str
    drain: asyncio.Task[None]
    renewed: float


class Dispatcher:
    def __init__(
        self, mailbox: Mailbox, worker: Worker, clock: Clock, *, replica: str,
        album_wait: float = 1.0, sweep_every: float = 2.0,
    ) -> None:
        self._mailbox = mailbox
        self._worker = worker
        self._clock = clock
        self._replica = replica
        self._album_wait_ms = int(album_wait * 1000)
        self._sweep_every = sweep_every
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._held: dict[str, _Held] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.stopping = False

    @property
    def active(self) -> int:
        return len(self._drains)

    def _token(self) -> str:
        return f"{self._replica}:{secrets.token_hex(6)}"

    async def record(self, update: Mapping[str, Any], body: str | None = None) -> bool:
        """Record one raw update; False for a duplicate or an update without an id. Raises
        StorageError when it could not be recorded (the caller must not confirm it)."""
        update_id = routing.update_id_of(update)
        if update_id is None:
            log.warning("ignored an update without an update_id")
            return False
        if routing.is_stop(update):  # queued, it would wait for the very answer it stops
            await self._worker.urgent(update)
            return True
        route = routing.route_of(update)
        token = self._token()
        body = body if body is not None else json.dumps(update, ensure_ascii=False)
        outcome = await self._mailbox.record(route, update_id, body, token)
        if outcome is None:
            log.info("dropped a duplicate delivery of update %d", update_id)
            return False
        if outcome == 1:
            self._start(route, token)
        return True

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="sweeper")

    def _start(self, route: str, token: str) -> None:
        if self.stopping:
            task = asyncio.get_running_loop().create_task(self._mailbox.release(route, token))
        else:
            task = asyncio.get_running_loop().create_task(self._drain(route, token), name=f"chat-{route}")
            self._drains[route] = task
        task.add_done_callback(lambda t: self._drains.pop(route, None) if t is self._drains.get(route)
                               else None)

    async def _sweep(self) -> None:
        while not self.stopping:
            try:
                rows = [(route, score, self._token()) for route, score in await self._mailbox.pending()
                        if route not in self._drains]
                for (route, _, token), claimed in zip(rows, await self._mailbox.claim_all(rows), strict=True):
                    if claimed:  # (while stopping, _start gives the lease straight back)
                        log.info("took over chat mail left by another holder")
                        self._start(route, token)
            except StorageError as exc:
                log.warning("sweep failed: %s", exc)
            await self._clock.sleep(self._sweep_every)

    async def _drain(self, route: str, token: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._held[route] = _Held(token, task, self._clock.now())
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="lease-keeper")
        try:
            first = True  # messages that arrive while a turn runs are combined into the next one
            while not self.stopping:
                peek = await self._mailbox.next(route, token, WINDOW)
                if peek is None:
                    return
                if not await self._turn(route, token, peek, combine=not first):
                    return
                first = False
        except LeaseLost:
            log.warning("lost the lease on a chat; another replica continues it")
        except StorageError as exc:
            log.error("stopped serving a chat, Redis failed: %s", exc)
        except asyncio.CancelledError:
            if self.stopping:
                await self._cut(route, token)
            raise
        finally:
            if (held := self._held.get(route)) is not None and held.drain is task:
                del self._held[route]
            if self.stopping:
                with contextlib.suppress(StorageError):
                    await self._mailbox.release(route, token)

    async def _keep(self) -> None:
        """Renew every lease this replica holds, all in one round trip, while it holds any; stop a
        chat's work when its lease is lost, or could not be renewed in time."""
        every = self._mailbox.lease_ms / 3000
        while True:
            await self._clock.sleep(every)
            if not (held := list(self._held.items())):
                return  # the next drain starts another keeper
            try:
                kept = await self._mailbox.renew_all([(route, h.token) for route, h in held])
            except StorageError as exc:
                log.warning("could not renew the chats' leases: %s", exc)
                for _, h in held:
                    if self._clock.now() - h.renewed > 2 * every:
                        h.drain.cancel()
                continue
            now = self._clock.now()
            for (_, h), ours in zip(held, kept, strict=True):
                if ours:
                    h.renewed = now
                elif not h.drain.done():
                    log.warning("a chat's lease was taken over; stopping its turn")
                    h.drain.cancel()

    async def _gather(
        self, route: str, token: str, peek: Peek, *, combine: bool = False
    ) -> tuple[list[Item], Work] | None:
        """The head's turn: an album once no part has come for a while; with ``combine``, the
        plain messages waiting behind the head too; else the update alone."""
        while True:
            updates = [json.loads(item.body) for item in peek.items]
            if routing.media_group_of(updates[0]) is None:
                picked = routing.combined(updates) if combine else [0]
                wait_ms = 0
            else:
                picked = routing.album(updates)
                arrivals = [peek.items[i].at_ms for i in picked]
                wait_ms = routing.album_settled(arrivals, peek.now_ms, self._album_wait_ms)
            if wait_ms <= 0:
                return [peek.items[i] for i in picked], Work(route, tuple(updates[i] for i in picked))
            await self._clock.sleep(wait_ms / 1000)
            again = await self._mailbox.next(route, token, WINDOW)
            if again is None:
                return None
            peek = again

    @staticmethod
    def _recorded(route: str, peek: Peek, record: TurnRecord) -> tuple[list[Item], Work]:
        """The items a turn record names (the turn as its first holder gathered it)."""
        wanted = set(record.parts) or {record.update_id}
        pairs = [(item, json.loads(item.body)) for item in peek.items]
        chosen = [(item, u) for item, u in pairs if routing.update_id_of(u) in wanted] or pairs[:1]
        return [item for item, _ in chosen], Work(route, tuple(u for _, u in chosen))

    async def _turn(self, route: str, token: str, peek: Peek, *, combine: bool) -> bool:
        """Handle the head turn; False when the chat should be left (lease gone, shutdown)."""
        try:
            head_id = routing.update_id_of(json.loads(peek.items[0].body)) or 0
            previous = TurnRecord.loads(peek.turn)
            if previous is not None and previous.update_id != head_id:
                previous = None  # left over from an update that is gone
            gathered = (self._recorded(route, peek, previous) if previous is not None
                        else await self._gather(route, token, peek, combine=combine))
        except ValueError:  # not JSON: nobody can handle it, so it must not block the chat
            log.error("dropped an unreadable mailbox entry")
            return await self._mailbox.done(route, token, peek.items[:1])
        if gathered is None:
            return False
        items, work = gathered
        parts = tuple(routing.update_id_of(u) or 0 for u in work.updates)
        record = previous or TurnRecord(head_id, parts=parts, asker=routing.asker_of(work.updates[0]))
        journal = self._journal(route, token, items, record)
        bound = turns.bind(journal)
        try:
            if previous is None:
                await journal.save(journal.record)
                await self._worker.process(work)
            else:
                await self._resume(work, previous, journal)
        finally:
            turns.unbind(bound)
        if journal.deferred:
            return False
        if not await journal.commit():
            raise LeaseLost
        return True

    async def _resume(self, work: Work, previous: TurnRecord, journal: Journal) -> None:
        action = turns.recovery_for(previous)
        log.info("resuming a turn left by another holder: %s", action.value)
        await self._worker.recover(work, previous, action)
        if action is Recovery.RETRY:
            journal.record = turns.next_attempt(previous)
            await journal.save(journal.record)
            await self._worker.process(work)

    def _journal(self, route: str, token: str, items: list[Item], record: TurnRecord) -> Journal:
        async def save(value: TurnRecord) -> bool:
            try:
                return await self._mailbox.save_turn(route, token, value.dumps())
            except StorageError as exc:
                log.warning("could not record the turn's progress: %s", exc)
                return False

        async def finish() -> bool:
            return await self._mailbox.done(route, token, items)

        return Journal(record, save, finish, may_start=lambda: not self.stopping)

    async def _cut(self, route: str, token: str) -> None:
        """After the grace period: mark the cut answer interrupted before giving the chat back."""
        try:
            async with asyncio.timeout(STOP_MARKING_SECONDS):
                peek = await self._mailbox.next(route, token, WINDOW)
                record = TurnRecord.loads(peek.turn) if peek else None
                if peek is None or record is None or turns.recovery_for(record) is not Recovery.MARK:
                    return  # nothing shown yet: the next holder runs the turn again
                items, work = self._recorded(route, peek, record)
                await self._worker.recover(work, record, Recovery.MARK)
                await self._mailbox.done(route, token, items)
        except (StorageError, TimeoutError, ValueError) as exc:
            log.warning("could not mark an interrupted answer at shutdown: %s", exc)

    async def stop(self, grace: float) -> None:
        """Take no new turns, give turns in flight ``grace`` seconds, then cut and mark the rest."""
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        running = list(self._drains.values())
        if running:
            log.info("waiting up to %.0f s for %d answers in flight", grace, len(running))
            _, late = await asyncio.wait(running, timeout=grace)
            await cancel_all(late)
            await asyncio.gather(*running, return_exceptions=True)
        await cancel_all([task for task in (self._sweeper, self._keeper) if task is not None])
