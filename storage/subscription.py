"""One pub/sub channel, subscribed on a connection of its own, that says so when it is lost.

The subscription gets its own one-connection pool, without the client's automatic retries or
health checks: a lost connection surfaces as an error instead of redis-py's silent
resubscription, which would drop the messages published meanwhile without a word. Whoever
listens must know, to make up for what it may have missed (re-check a key, poll once more).
A line silent for ``ping_every`` seconds is pinged; no answer within another ``ping_every``
raises, so a connection dead without a word is noticed too.

(``storage.signals`` listens to the stop channel with it, ``storage.semaphore`` to freed slots.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class Messages:
    """The payloads published on the channel, in order; raises StorageError (a RedisError) when
    the connection is lost or stays silent through a ping."""

    def __init__(self, pubsub: PubSub, ping_every: float) -> None:
        self._pubsub = pubsub
        self._ping_every = ping_every
        self._pinged = False

    def __aiter__(self) -> Messages:
        return self

    async def __anext__(self) -> str:
        while True:
            message = await self._pubsub.get_message(timeout=self._ping_every)
            if message is None:  # nothing for a while: the line is quiet, or dead without a word
                if self._pinged:
                    raise RedisTimeoutError("a subscribed channel did not answer a ping")
                await self._pubsub.ping()
                self._pinged = True
                continue
            self._pinged = False
            if message.get("type") == "message":  # not a pong or an (un)subscribe confirmation
                return _text(message.get("data"))


@contextlib.asynccontextmanager
async def subscription(
    redis: Redis, channel: str, *, ping_every: float, subscribe_timeout: float,
) -> AsyncIterator[Messages]:
    """Subscribe (on entry, confirmed by the server: whatever is published after entry is heard)
    and give the channel's messages; leaving closes the connection. Raises StorageError."""
    source = redis.connection_pool
    options = {**source.connection_kwargs, "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
    pool = ConnectionPool(connection_class=source.connection_class, max_connections=1, **options)
    pubsub = PubSub(pool)
    try:
        await pubsub.subscribe(channel)
        await _confirmed(pubsub, within=subscribe_timeout)
        yield Messages(pubsub, ping_every)
    finally:
        with contextlib.suppress(RedisError, OSError):  # closing what may be broken already
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        with contextlib.suppress(RedisError, OSError):
            await pool.disconnect()


async def _confirmed(pubsub: PubSub, *, within: float) -> None:
    while True:
        message = await pubsub.get_message(timeout=within)
        if message is None:
            raise RedisTimeoutError("a subscription was not confirmed in time")
        if message.get("type") == "subscribe":
            return
