"""A cluster-wide counting semaphore on Redis that bounds concurrent agent calls across all replicas.

Algorithm (every operation is one Lua script call, so one round trip and atomic on the server):

* ``holders`` is a sorted set of slot holders scored by lease expiry in ms, taken from the Redis
  server's ``TIME`` inside the script (never a client clock). Each acquire first drops holders
  whose lease is past, so a crashed replica's slots come back when their leases lapse.
* ``queue`` is a sorted set of waiters scored by arrival (one more than the last waiter's score;
  ``ZADD NX`` so re-polling keeps the original place). ``alive`` scores the same waiters by the
  expiry of their heartbeat, refreshed on every poll; waiters whose heartbeat lapsed are dropped
  from both sets, so a crashed replica's waiters do not block the queue.
* A caller may take a slot only while its rank in ``queue`` (a newcomer's would-be rank: the queue
  length) is below the number of free slots; otherwise it waits and is told its rank, the number
  of waiters ahead of it. This makes the queue first-come-first-served.

Keys (one Redis Cluster hash tag, ``{agent}``, so each script touches one slot, as storage.keys does)::

    {prefix}:{bot_id}:{agent}:holders   {prefix}:{bot_id}:{agent}:queue   {prefix}:{bot_id}:{agent}:alive
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from storage.keys import DEFAULT_PREFIX

Part = Literal["holders", "queue", "alive"]

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keep(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

# KEYS: holders, queue, alive. ARGV: holder, limit, lease_ms, waiter_ttl_ms. Returns {acquired, ahead}.
_TRY_ACQUIRE = _PRELUDE + """
local holder, limit = ARGV[1], tonumber(ARGV[2])
local lease, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[2], dead)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], holder)
local rank = redis.call('ZRANK', KEYS[2], holder)
if not rank then rank = redis.call('ZCARD', KEYS[2]) end
if held or rank < limit - redis.call('ZCARD', KEYS[1]) then
  redis.call('ZADD', KEYS[1], now + lease, holder)
  redis.call('ZREM', KEYS[2], holder)
  redis.call('ZREM', KEYS[3], holder)
  keep(KEYS[1], lease)
  return {1, 0}
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local seq = 1
if last[2] then seq = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[2], 'NX', seq, holder)
redis.call('ZADD', KEYS[3], now + ttl, holder)
keep(KEYS[2], ttl)
keep(KEYS[3], ttl)
return {0, rank}
"""

# KEYS: holders. ARGV: holder, lease_ms. Returns 1 if the holder still held a slot (now renewed).
_RENEW = _PRELUDE + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
keep(KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS: holders, queue, alive. ARGV: holder.
_RELEASE = """
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0
"""

# KEYS: a sorted set scored by expiry. Counts the members not yet expired; changes nothing.
_COUNT_LIVE = _PRELUDE + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\n"


def semaphore_key(bot_id: int, part: Part, prefix: str = DEFAULT_PREFIX) -> str:
    """``yq:<bot_id>:{agent}:<part>``: every semaphore key shares the ``{agent}`` hash tag."""
    return f"{prefix}:{bot_id}:{{agent}}:{part}"


@dataclass(frozen=True, slots=True)
class Ticket:
    """The outcome of one attempt: a slot was taken, or how many waiters are ahead in the queue."""

    acquired: bool
    ahead: int


class RedisSemaphore:
    """At most ``limit`` holders across all replicas; waiters are served in arrival order.

    Holder ids must be unique per acquisition (e.g. a uuid). A holder that runs longer than
    ``lease_ms`` must call :meth:`renew` in time, or its slot may go to a waiter.
    """

    def __init__(
        self, redis: Redis, *, bot_id: int, limit: int = 10, lease_ms: int = 15_000,
        waiter_ttl_ms: int = 5_000, prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.limit = limit  # may be changed at any time; all replicas are assumed to agree
        self.lease_ms = lease_ms
        self.waiter_ttl_ms = waiter_ttl_ms
        self._keys = [semaphore_key(bot_id, part, prefix) for part in ("holders", "queue", "alive")]
        self._try_acquire = redis.register_script(_TRY_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._count_live = redis.register_script(_COUNT_LIVE)

    async def try_acquire(self, holder: str) -> Ticket:
        """Take a slot if allowed, else join (or stay in) the queue and say how many are ahead."""
        acquired, ahead = await self._try_acquire(
            keys=self._keys, args=[holder, self.limit, self.lease_ms, self.waiter_ttl_ms]
        )
        return Ticket(acquired=bool(int(acquired)), ahead=int(ahead))

    async def renew(self, holder: str) -> bool:
        """Push the holder's lease forward; False if it no longer holds a slot."""
        return bool(int(await self._renew(keys=self._keys[:1], args=[holder, self.lease_ms])))

    async def release(self, holder: str) -> None:
        """Free the holder's slot, and take it out of the queue if it was waiting."""
        await self._release(keys=self._keys, args=[holder])

    async def in_use(self) -> int:
        """Slots held under a live lease."""
        return int(await self._count_live(keys=self._keys[:1]))

    async def waiting(self) -> int:
        """Waiters with a live heartbeat."""
        return int(await self._count_live(keys=self._keys[2:]))

    async def acquire(
        self, holder: str, *, on_wait: Callable[[int], Awaitable[None]] | None = None,
        poll: float = 0.2, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Poll until a slot is taken, calling ``on_wait(ahead)`` whenever the figure changes.

        On cancellation (or any error) the holder leaves the queue, best effort, and it re-raises.
        ``poll`` must stay well below ``waiter_ttl_ms``, or the waiter's place lapses between polls.
        Waiters far back poll less often (``poll`` times one more than the number ahead, at most a
        third of the heartbeat): the next in line asks every ``poll`` seconds, and a queue of
        hundreds does not flood Redis with questions whose answer cannot change.
        """
        last: int | None = None
        try:
            while not (ticket := await self.try_acquire(holder)).acquired:
                if ticket.ahead != last:
                    last = ticket.ahead
                    if on_wait is not None:
                        await on_wait(ticket.ahead)
                await sleep(min(poll * (1 + ticket.ahead), self.waiter_ttl_ms / 3000))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(holder))
            raise
