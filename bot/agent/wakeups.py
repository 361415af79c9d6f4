"""Waking this replica's agent-slot waiters when a slot frees anywhere, instead of polling fast.

Every release that frees something (a holder's slot, a waiter's place) is announced on the bot's
one channel (``storage.semaphore``); each replica listens once, here, and counts what it heard.

Who is woken: a waiter told ``ahead = k`` by its last poll cannot get a slot before k+1 slots or
places ahead of it have freed, so it is woken (and polls at once) only when more than k releases
were heard since that poll began. One release does not make every waiter ask again; forty
waiters do not turn each release into forty polls. Counting from the start of the poll errs
early, never late: a release that the poll already saw may be counted, and costs one poll more.

Otherwise a waiter polls once a heartbeat. That keeps its place alive and catches what no
message announces: a crashed holder's lease lapsing, a crashed replica's waiters lapsing.

While the subscription is down (not yet subscribed, reconnecting, Redis in trouble), nothing
would wake a waiter, so waiters poll fast, as before releases were announced. The listener wakes
every waiter when it loses the subscription (to switch them to fast polling at once) and again
when it has it back (a release may have gone unheard meanwhile).

Being woken only prompts a poll: who gets a slot is decided by the semaphore's script alone, so
the queue stays first-come-first-served whatever is heard or missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Protocol

from bot.clock import Clock, sleep_unless
from bot.cluster.listening import BACKOFF, keep_listening, log_death
from bot.tasks import cancel_all

log = logging.getLogger(__name__)



class Releases(Protocol):
    """The semaphore's side: how often waiters must poll, and the releases announced."""

    @property
    def heartbeat(self) -> float:
        """The longest a waiter may go between polls without losing its place."""

    def fast_interval(self, ahead: int, poll: float) -> float:
        """How long to wait between polls when no message would wake the waiter."""

    def listen(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[str]]:
        """Subscribed on entry; one item per release heard; raises StorageError when lost."""


class Waiter:
    """One acquisition's pauses between its polls (its :meth:`pause` is the semaphore's hook)."""

    def __init__(self, board: SlotBoard) -> None:
        self._board = board
        self._woken = asyncio.Event()
        self._mark = board.heard  # releases heard when its next (here: first) poll began
        self._ahead: int | None = None  # while it pauses: the number ahead at its last poll

    @property
    def due(self) -> bool:
        """Enough was freed since its last poll began that a slot may be its turn now."""
        return self._ahead is not None and self._board.heard - self._mark > self._ahead

    def wake(self) -> None:
        self._woken.set()

    async def pause(self, ahead: int) -> None:
        """Wait until woken, or a heartbeat (fast polling while unsubscribed); then it polls."""
        self._ahead = ahead
        if self.due:  # heard during the poll itself
            self._woken.set()
        try:
            await sleep_unless(self._board.clock, self._board.interval(ahead), self._woken)
        finally:
            self._ahead = None
            self._woken.clear()  # a wake from here on (the subscription changing) is for the next pause
            self._mark = self._board.heard


class SlotBoard:
    """This replica's slot waiters and its one subscription to the releases of every replica."""

    def __init__(
        self, releases: Releases, clock: Clock, *, poll: float = 0.2, backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self._releases = releases
        self.clock = clock
        self._poll = poll
        self._backoff = backoff
        self._waiters: set[Waiter] = set()
        self._heard = 0
        self._subscribed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    @property
    def heard(self) -> int:
        """Releases heard since the board was made."""
        return self._heard

    @property
    def subscribed(self) -> bool:
        """Releases are being heard: waiters may sleep a whole heartbeat."""
        return self._subscribed.is_set()

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def interval(self, ahead: int) -> float:
        """The longest pause of a waiter with ``ahead`` waiters before it."""
        if self.subscribed:
            return self._releases.heartbeat
        return self._releases.fast_interval(ahead, self._poll)

    def start(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="slot-listener")
            self._listener.add_done_callback(log_death)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await cancel_all([listener])

    @contextlib.contextmanager
    def waiter(self) -> Iterator[Waiter]:
        """A waiter that hears this board's releases while inside."""
        waiter = Waiter(self)
        self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)

    def _heard_release(self) -> None:
        self._heard += 1
        for waiter in self._waiters:
            if waiter.due:
                waiter.wake()

    def _wake_all(self) -> None:
        for waiter in self._waiters:
            waiter.wake()

    async def _listen(self) -> None:
        await keep_listening(
            self._releases.listen, lambda _: self._heard_release(), subscribed=self._subscribed,
            clock=self.clock, what="agent slot", backoff=self._backoff, ready=self._ready,
            lost=self._wake_all,  # nothing announces releases now: poll fast from here
        )

    async def _ready(self) -> None:
        self._wake_all()  # a release may have gone unheard while unsubscribed
