"""Stop signals between replicas: a stop pressed on any replica reaches the one streaming the answer.

A stop for the turn ``turn`` (the update id of the turn's head update) of the chat ``route`` is
announced two ways, in one round trip:

* a short-lived key beside the chat's other coordination keys (same hash tag), holding the turn::

      {prefix}:{bot_id}:{c:<chat_id>}:stop     the turn a stop was last requested for (PX ttl)

* a message ``"<route>:<turn>"`` on the bot's one stop channel (``keys.stop_channel``), which
  every replica subscribes to once.

The message reaches a listening replica at once; the key is for whoever was not listening at
that moment (a turn that starts just after the stop, a replica reconnecting its subscription):
it checks the key when it starts watching or resubscribes.

:meth:`RedisStopSignals.listen` subscribes on a connection of its own (its own one-connection
pool, without the client's automatic retries, so a lost connection surfaces as an error instead
of a silent resubscription that would drop the messages published meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from storage import keys
from storage.subscription import Messages, subscription

log = logging.getLogger(__name__)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _parse(data: Any) -> tuple[str, int] | None:
    """``"route:turn"`` (the route may itself hold colons; the turn is a non-negative int)."""
    route, sep, turn = _text(data).rpartition(":")
    if not sep or not route or not (turn.isascii() and turn.isdigit()):
        return None
    return route, int(turn)


async def _stops(messages: Messages) -> AsyncIterator[tuple[str, int]]:
    """The stops heard on the channel, as ``(route, turn)``; malformed ones are logged and skipped."""
    async for data in messages:
        parsed = _parse(data)
        if parsed is None:
            log.warning("ignored a malformed stop message: %r", data)
            continue
        yield parsed


class RedisStopSignals:
    """Stop requests of one bot's chats (``route`` is the chat's id, ``turn`` an update id)."""

    def __init__(
        self, redis: Redis, *, bot_id: int, prefix: str = keys.DEFAULT_PREFIX, ttl_ms: int = 60_000,
        ping_every: float = 15.0, subscribe_timeout: float = 5.0,
    ) -> None:
        self._redis = redis
        self._bot_id = bot_id
        self._prefix = prefix
        self.ttl_ms = ttl_ms
        self._channel = keys.stop_channel(bot_id, prefix)
        self._ping_every = ping_every
        self._subscribe_timeout = subscribe_timeout

    def _k(self, route: str) -> str:
        return keys.chat_key(self._bot_id, route, "stop", self._prefix)

    async def request(self, route: str, turn: int) -> None:
        """Ask for the turn to stop: set the chat's stop key, then announce it (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._k(route), str(turn), px=self.ttl_ms)
            pipe.publish(self._channel, f"{route}:{turn}")
            await pipe.execute()

    async def requested(self, route: str) -> int | None:
        """The turn a stop was last requested for in this chat, while its key lives."""
        value = await self._redis.get(self._k(route))
        if value is None:
            return None
        text = _text(value)
        if not (text.isascii() and text.isdigit()):
            log.warning("ignored a malformed stop key for chat %s: %r", route, text)
            return None
        return int(text)

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[AsyncIterator[tuple[str, int]]]:
        """Subscribe (on entry, confirmed by the server: stops published after entry are heard)
        and give the stream of stops; leaving closes the connection. Raises StorageError."""
        async with subscription(
            self._redis, self._channel, ping_every=self._ping_every,
            subscribe_timeout=self._subscribe_timeout,
        ) as messages:
            yield _stops(messages)
