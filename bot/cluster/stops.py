"""Stops across replicas: a stop pressed on any replica reaches the replica streaming the answer.

A turn is ``(route, turn)``: the chat's id and the update id of the turn's head update. The
replica running a turn :meth:`StopBoard.watch`-es it and gets an Event that is set when a stop
for exactly that turn arrives from anywhere; whoever receives a stop calls
:meth:`StopBoard.request`. Each replica keeps one subscription (a background listener) for all
its turns. Stops are also left in a short-lived key per chat (see ``storage.signals``), read
when a watch begins (a stop may have come just before) and after every (re)subscription (stops
published while the subscription was down are not lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any, Protocol

from bot.clock import Clock
from bot.cluster.listening import BACKOFF, keep_listening, log_death
from bot.tasks import cancel_all
from storage import StorageError

log = logging.getLogger(__name__)



class StopSignals(Protocol):
    async def request(self, route: str, turn: int) -> None:
        """Record and announce a stop for the turn; raises StorageError."""

    async def requested(self, route: str) -> int | None:
        """The turn a stop was last requested for in this chat, if still recorded."""

    def listen(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[tuple[str, int]]]:
        """Subscribed on entry; iterates over the stops heard; raises StorageError when lost."""


class StopBoard:
    """This replica's running turns and its one subscription to the stops of every replica."""

    def __init__(self, signals: StopSignals, clock: Clock, *, backoff: Sequence[float] = BACKOFF) -> None:
        self._signals = signals
        self._clock = clock
        self._backoff = backoff
        self._watched: dict[str, dict[int, list[asyncio.Event]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # the listener and pending checks
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def subscribed(self) -> bool:
        """The listener is subscribed (and has checked the turns watched at that moment)."""
        return self._subscribed.is_set()

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    @property
    def watching(self) -> int:
        return sum(len(events) for turns in self._watched.values() for events in turns.values())

    def start(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = self._spawn(self._listen(), name="stop-listener")

    async def close(self) -> None:
        self._listener = None
        await cancel_all(self._tasks)
        self._subscribed.clear()

    async def request(self, route: str, turn: int) -> None:
        """Stop the turn wherever it runs; raises StorageError when the stop could not be sent."""
        await self._signals.request(route, turn)

    @contextlib.contextmanager
    def watch(self, route: str, turn: int) -> Iterator[asyncio.Event]:
        """While inside, the Event is set by a stop for exactly this turn (not another of the chat)."""
        event = asyncio.Event()
        self._watched.setdefault(route, {}).setdefault(turn, []).append(event)
        self._spawn(self._check(route), name=f"stop-check-{route}")
        try:
            yield event
        finally:
            turns = self._watched.get(route, {})
            events = turns.get(turn, [])
            with contextlib.suppress(ValueError):
                events.remove(event)
            if not events:
                turns.pop(turn, None)
            if not turns:
                self._watched.pop(route, None)

    def _deliver(self, route: str, turn: int) -> None:
        for event in self._watched.get(route, {}).get(turn, ()):
            event.set()

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(log_death)
        return task

    async def _check(self, route: str) -> None:
        """A stop may have been requested just before the watch began: its key says so."""
        try:
            turn = await self._signals.requested(route)
        except StorageError as exc:
            log.warning("could not check chat %s for a stop: %s", route, exc)
            return
        if turn is not None:
            self._deliver(route, turn)

    async def _check_all(self) -> None:
        routes = list(self._watched)
        found = await asyncio.gather(*(self._signals.requested(r) for r in routes), return_exceptions=True)
        for route, turn in zip(routes, found, strict=True):
            if isinstance(turn, BaseException):
                raise turn
            if turn is not None:
                self._deliver(route, turn)

    async def _listen(self) -> None:
        await keep_listening(
            self._signals.listen, lambda stop: self._deliver(*stop), subscribed=self._subscribed,
            clock=self._clock, what="stop", backoff=self._backoff, ready=self._check_all,
        )
