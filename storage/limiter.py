"""Cluster-wide rate limits on Redis for Telegram's send budgets, shared by every replica.

Algorithm: GCRA (generic cell rate algorithm). Each key holds one number, ``allow_at``: the
Redis-server time (microseconds) from which the next unit may go; it equals the classic TAT
minus the burst tolerance ``(burst - 1) * period``. An idle key is treated as
``now - (burst - 1) * period`` (a full burst). A request for ``cost`` units that must leave
``reserve`` units in the bucket waits ``allow_at + (cost - 1 + reserve) * period - now``; when that
is <= 0 it is granted and ``allow_at`` moves to ``max(allow_at, idle) + cost * period``, otherwise
nothing is written. (A reserve keeps a unit for what must not wait: the final text of an answer.)
One Lua script does the check and the booking atomically and reads the clock with ``TIME``, so
replicas never race and client clocks do not matter. Each key expires when its bucket would be
full again, so idle keys vanish and a missing key means "full burst available".

The bot-wide budget is a sliding window instead (:meth:`RedisRateLimiter.window`): a sorted set of
the grants' server times, at most ``limit`` of them in any ``span``. That is Telegram's own rule
("about 30 messages per second"), and unlike a GCRA it lets the final texts of answers that end
together go together, while still never exceeding ``limit`` in a second. The key expires a
``span`` after the last grant.

Design: every call touches exactly one key, so any key works in Redis Cluster (each name carries
its own hash tag). A send that is under several limits takes them one after another, narrowest
first: ``chat`` (then ``group`` for groups), then ``bot``, looping on each (sleep the returned wait
and call again) until it answers 0.0. A refusal books nothing, so retrying is free; a granted
narrow key stays booked while the bot key is awaited, which can only delay that chat, never
overrun the shared bot budget. ``peek`` answers the wait without booking (to pick who goes next).
"""

from __future__ import annotations

import math

from redis.asyncio import Redis

from storage.keys import DEFAULT_PREFIX

_US = 1_000_000

# KEYS[1] = limit key; ARGV = period_us, burst, cost, book ("1" books a grant, "0" only peeks),
# reserve (units that must remain after the grant).
# Returns 0 when granted (and booked if asked), else the wait in microseconds; never writes then.
_GCRA = """
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allow_at = math.max(tonumber(redis.call('GET', KEYS[1])) or 0, now - (burst - 1) * period)
local wait = allow_at + (cost - 1 + tonumber(ARGV[5])) * period - now
if wait > 0 then return wait end
if ARGV[4] == '1' then
  local nxt = allow_at + cost * period
  local ttl_ms = math.ceil((nxt + (burst - 1) * period - now) / 1000)
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', ttl_ms))
end
return 0
"""

# KEYS[1] = limit key; ARGV[1] = block length in microseconds. Never shortens an existing hold.
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
if until_us <= (tonumber(redis.call('GET', KEYS[1])) or 0) then return 0 end
local ttl_ms = math.max(redis.call('PTTL', KEYS[1]), math.ceil(tonumber(ARGV[1]) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', string.format('%.0f', ttl_ms))
return 1
"""


# KEYS[1] = window key (a sorted set of grant times); ARGV = span_us, limit, reserve.
# Grants if fewer than limit - reserve grants fall in the last span_us, booking one at now;
# else returns the microseconds until enough of them have left the window (never writes then).
_WINDOW = """
local span, limit, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local n = redis.call('ZCARD', KEYS[1])
local room = limit - reserve
if n >= room then
  local oldest = redis.call('ZRANGE', KEYS[1], n - room, n - room, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + span - now)
end
local at = string.format('%.0f', now)
redis.call('ZADD', KEYS[1], at, at .. ':' .. n)
redis.call('PEXPIRE', KEYS[1], math.ceil(span / 1000))
return 0
"""


class RedisRateLimiter:
    """GCRA limits on single Redis keys; waits are in seconds, 0.0 meaning "granted"."""

    def __init__(self, redis: Redis, *, bot_id: int, prefix: str = DEFAULT_PREFIX) -> None:
        self._gcra = redis.register_script(_GCRA)
        self._block = redis.register_script(_BLOCK)
        self._window = redis.register_script(_WINDOW)
        self._base = f"{prefix}:{bot_id}:rl"

    def chat(self, chat_id: int) -> str:
        """Key of one chat's budget (Telegram: about 1 message/s per chat)."""
        return f"{self._base}:{{c:{chat_id}}}"

    def group(self, chat_id: int) -> str:
        """Key of one group's extra budget (Telegram: 20 messages/min per group)."""
        return f"{self._base}:{{g:{chat_id}}}"

    def bot(self) -> str:
        """Key of the bot-wide budget (Telegram: about 30 messages/s in all), for :meth:`window`."""
        return f"{self._base}:{{bot}}:window"

    async def acquire(
        self, name: str, *, period: float, burst: int = 1, cost: int = 1, reserve: int = 0
    ) -> float:
        """Book ``cost`` units and return 0.0, or book nothing and return the seconds to wait.

        ``period`` is the seconds per unit (1/rate); up to ``burst`` units may go at once, and
        ``reserve`` units must be left over after this grant.
        """
        return await self._run(name, period, burst, cost, reserve, book=True)

    async def peek(
        self, name: str, *, period: float, burst: int = 1, cost: int = 1, reserve: int = 0
    ) -> float:
        """The wait ``acquire`` would answer now, booking nothing."""
        return await self._run(name, period, burst, cost, reserve, book=False)

    async def window(self, name: str, *, limit: int, span: float = 1.0, reserve: int = 0) -> float:
        """Book one unit under "at most ``limit`` in any ``span`` seconds" and return 0.0, or book
        nothing and return the seconds until one may go. ``reserve`` units of the window are left
        to callers asking with a smaller reserve (what must not wait: an answer's final text)."""
        if not (span > 0 and 0 <= reserve < limit):
            raise ValueError(f"need span > 0 and 0 <= reserve < limit (got {span}, {reserve}, {limit})")
        wait_us = await self._window(keys=[name], args=[max(1, round(span * _US)), limit, reserve])
        return int(wait_us) / _US

    async def block(self, name: str, seconds: float) -> None:
        """Refuse everything on ``name`` for ``seconds`` from now (Telegram's 429 retry_after)."""
        if seconds > 0:
            await self._block(keys=[name], args=[math.ceil(seconds * _US)])

    async def _run(
        self, name: str, period: float, burst: int, cost: int, reserve: int, *, book: bool
    ) -> float:
        if not (period > 0 and cost >= 1 and reserve >= 0 and cost + reserve <= burst):
            raise ValueError(f"need period > 0 and 1 <= cost, 0 <= reserve, cost + reserve <= burst "
                             f"(got {period}, {cost}, {reserve}, {burst})")
        period_us = max(1, round(period * _US))
        args = [period_us, burst, cost, "1" if book else "0", reserve]
        wait_us = await self._gcra(keys=[name], args=args)
        return int(wait_us) / _US  # an integer reply: same with or without decode_responses
