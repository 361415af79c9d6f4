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
* A release that freed something (a holder's slot, or a waiter's place in the queue) announces
  it on the bot's ``agent-freed`` channel, from inside the script, so the replicas' waiters can
  poll when an answer may have changed rather than often (bot.agent.wakeups). Nothing announces
  a lapsed lease or heartbeat: waiters still poll once a heartbeat, which also catches those.
  The message only prompts a poll; who gets a slot is decided by the scripts alone.

Keys (one Redis Cluster hash tag, ``{agent}``, so each script touches one slot, as storage.keys
does), and the channel (not a key: plain PUBLISH reaches every node of a cluster)::

    {prefix}:{bot_id}:{agent}:holders   {prefix}:{bot_id}:{agent}:queue   {prefix}:{bot_id}:{agent}:alive
    {prefix}:{bot_id}:agent-freed       pub/sub: the holder id of each release that freed something
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from storage.keys import DEFAULT_PREFIX
from storage.subscription import Messages, subscription

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

# KEYS: holders. ARGV: lease_ms, holder... Returns, for each holder, 1 if it still held a slot (now
# renewed), else 0.
_RENEW = _PRELUDE + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease, kept = tonumber(ARGV[1]), {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
    kept[#kept + 1] = 1
  else
    kept[#kept + 1] = 0
  end
end
keep(KEYS[1], lease)
return kept
"""

# KEYS: holders, queue, alive. ARGV: holder, channel. Returns 1 if it freed a slot or a place.
# A waiter leaving the queue is announced too: those behind it move up, as when a slot frees.
_RELEASE = """
local freed = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if freed == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
"""

# KEYS: a sorted set scored by expiry. Counts the members not yet expired; changes nothing.
_COUNT_LIVE = _PRELUDE + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\n"


def semaphore_key(bot_id: int, part: Part, prefix: str = DEFAULT_PREFIX) -> str:
    """``yq:<bot_id>:{agent}:<part>``: every semaphore key shares the ``{agent}`` hash tag."""
    return f"{prefix}:{bot_id}:{{agent}}:{part}"


def freed_channel(bot_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    """``yq:<bot_id>:agent-freed``: the bot's releases are announced here; each replica listens once."""
    return f"{prefix}:{bot_id}:agent-freed"


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
        waiter_ttl_ms: int = 15_000, prefix: str = DEFAULT_PREFIX,
        ping_every: float = 5.0, subscribe_timeout: float = 5.0,
    ) -> None:
        self.limit = limit  # may be changed at any time; all replicas are assumed to agree
        self.lease_ms = lease_ms
        # A waiter polls at least once a heartbeat (a third of this) to keep its place. 15 s, a
        # 5 s heartbeat: with releases announced, these polls are most of a waiter's Redis
        # traffic (5 s instead of 1.7 s cuts them by three). The price is paid when a replica
        # crashes: each of its waiters that reaches the head of the queue keeps one free slot
        # idle until its heartbeat lapses, up to 15 s instead of 5 s, the same bound a crashed
        # holder's slot already has (lease_ms). A replica that stops cleanly leaves at once.
        self.waiter_ttl_ms = waiter_ttl_ms
        self._keys = [semaphore_key(bot_id, part, prefix) for part in ("holders", "queue", "alive")]
        self._redis = redis
        self._channel = freed_channel(bot_id, prefix)
        self._ping_every = ping_every
        self._subscribe_timeout = subscribe_timeout
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
        [kept] = await self.renew_all([holder])
        return kept

    async def renew_all(self, holders: Sequence[str]) -> list[bool]:
        """Push each holder's lease forward, in one round trip; which ones still held a slot."""
        if not holders:
            return []
        kept = await self._renew(keys=self._keys[:1], args=[self.lease_ms, *holders])
        return [bool(int(k)) for k in kept]

    async def release(self, holder: str) -> None:
        """Free the holder's slot, or take it out of the queue if it was waiting, and announce it
        (nothing is announced when the holder had neither)."""
        await self._release(keys=self._keys, args=[holder, self._channel])

    @property
    def heartbeat(self) -> float:
        """The longest a waiter may go between polls: a third of its place's time to live."""
        return self.waiter_ttl_ms / 3000

    def fast_interval(self, ahead: int, poll: float) -> float:
        """Polling with nothing to wake the waiter: ``poll`` times one more than the number
        ahead, at most a heartbeat. The next in line asks every ``poll`` seconds, and a queue
        of hundreds does not flood Redis with questions whose answer cannot change."""
        return min(poll * (1 + ahead), self.heartbeat)

    def listen(self) -> contextlib.AbstractAsyncContextManager[Messages]:
        """Subscribe to the announced releases (confirmed on entry); each message is the holder id
        of one release. Raises StorageError when the subscription is lost: messages published
        until it is back are not heard."""
        return subscription(
            self._redis, self._channel, ping_every=self._ping_every, subscribe_timeout=self._subscribe_timeout
        )

    async def in_use(self) -> int:
        """Slots held under a live lease."""
        return int(await self._count_live(keys=self._keys[:1]))

    async def waiting(self) -> int:
        """Waiters with a live heartbeat."""
        return int(await self._count_live(keys=self._keys[2:]))

    async def acquire(
        self, holder: str, *, on_wait: Callable[[int], Awaitable[None]] | None = None,
        pause: Callable[[int], Awaitable[None]] | None = None,
        poll: float = 0.2, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Poll until a slot is taken, calling ``on_wait(ahead)`` whenever the figure changes.

        Between polls it awaits ``pause(ahead)`` (which must return within a heartbeat, or the
        waiter's place lapses), or else sleeps :meth:`fast_interval`. On cancellation (or any
        error) the holder leaves the queue, best effort, and it re-raises.
        """
        last: int | None = None
        try:
            while not (ticket := await self.try_acquire(holder)).acquired:
                if ticket.ahead != last:
                    last = ticket.ahead
                    if on_wait is not None:
                        await on_wait(ticket.ahead)
                if pause is not None:
                    await pause(ticket.ahead)
                else:
                    await sleep(self.fast_interval(ticket.ahead, poll))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(holder))
            raise
