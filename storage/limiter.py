"""Cluster-wide rate limits on Redis for Telegram's send budgets, shared by every replica.

Two kinds of key, each checked and booked by one Lua script that reads the clock with ``TIME``,
so replicas never race and client clocks do not matter:

* **A chat's budget: GCRA** (generic cell rate algorithm). The key holds one number, ``allow_at``:
  the Redis-server time (microseconds) from which the next unit may go; it equals the classic TAT
  minus the burst tolerance ``(burst - 1) * period``. An idle key is treated as
  ``now - (burst - 1) * period`` (a full burst). A request for ``cost`` units that must leave
  ``reserve`` units in the bucket waits ``allow_at + (cost - 1 + reserve) * period - now``; when
  that is <= 0 it is granted and ``allow_at`` moves to ``max(allow_at, idle) + cost * period``,
  otherwise nothing is written. (A reserve keeps a unit for what must not wait: the final text of
  an answer.) The key expires when its bucket would be full again, so idle keys vanish.
* **The bot's budget: a sliding window**, a sorted set of the grants' server times, at most
  ``limit`` of them in any ``span``. That is Telegram's own rule ("about 30 messages per
  second"), and unlike a GCRA it lets the final texts of answers that end together go together,
  while never exceeding ``limit`` in a second. A grant that keeps a reserve (what can wait) also
  keeps ``span / limit`` after the newest grant: such operations are spread out, so the window
  never fills with them in one instant just before a burst of urgent ones. The key expires a
  ``span`` after the last grant.

:meth:`RedisRateLimiter.take` books a message operation's chat unit and bot unit in one round
trip: the chat first (a refusal books nothing), then the bot (a refusal there leaves the chat
booked, so nothing else goes in the chat while the operation waits for the bot). Every limiter key
shares one hash tag, ``{rl}``, so that script is valid in Redis Cluster too; they all live on one
node, which is no load: the bot-wide budget itself caps their traffic at about 30 calls a second.
"""

from __future__ import annotations

import math

from redis.asyncio import Redis

from storage.keys import DEFAULT_PREFIX

_US = 1_000_000

# gcra(key, period_us, burst, cost, reserve, book): 0 when granted (booked if book), else the wait
# in microseconds (nothing written). window(key, span_us, limit, reserve): 0 when granted and
# booked, else the microseconds until enough grants have left the window, or (with a reserve)
# until span/limit after the newest grant (nothing written).
_FUNCTIONS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function gcra(key, period, burst, cost, reserve, book)
  local allow_at = math.max(tonumber(redis.call('GET', key)) or 0, now - (burst - 1) * period)
  local wait = allow_at + (cost - 1 + reserve) * period - now
  if wait > 0 then return wait end
  if book then
    local nxt = allow_at + cost * period
    local ttl_ms = math.ceil((nxt + (burst - 1) * period - now) / 1000)
    redis.call('SET', key, string.format('%.0f', nxt), 'PX', string.format('%.0f', ttl_ms))
  end
  return 0
end
local function window(key, span, limit, reserve)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  local n = redis.call('ZCARD', key)
  local room = limit - reserve
  if n >= room then
    local oldest = redis.call('ZRANGE', key, n - room, n - room, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + span - now)
  end
  if reserve > 0 and n > 0 then
    local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    local gap = tonumber(newest[2]) + math.floor(span / limit) - now
    if gap > 0 then return gap end
  end
  local at = string.format('%.0f', now)
  redis.call('ZADD', key, at, at .. ':' .. n)
  redis.call('PEXPIRE', key, math.ceil(span / 1000))
  return 0
end
"""

# KEYS[1] = chat key; ARGV = period_us, burst, cost, reserve.
_GCRA = _FUNCTIONS + """
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), true)
"""

# KEYS[1] = window key; ARGV = span_us, limit, reserve.
_WINDOW = _FUNCTIONS + """
return window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""

# KEYS = chat key, bot window key; ARGV = period_us, burst, reserve, span_us, limit, bot reserve.
# Returns {chat wait, bot wait}; the bot wait is -1 when the chat refused (the bot was not asked).
_TAKE = _FUNCTIONS + """
local wait = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1, tonumber(ARGV[3]), true)
if wait > 0 then return {wait, -1} end
return {0, window(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))}
"""

# KEYS[1] = chat key; ARGV[1] = block length in microseconds. Never shortens an existing hold.
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
if until_us <= (tonumber(redis.call('GET', KEYS[1])) or 0) then return 0 end
local ttl_ms = math.max(redis.call('PTTL', KEYS[1]), math.ceil(tonumber(ARGV[1]) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', string.format('%.0f', ttl_ms))
return 1
"""


class RedisRateLimiter:
    """Telegram's budgets on Redis; waits are in seconds, 0.0 meaning "granted" (and booked)."""

    def __init__(self, redis: Redis, *, bot_id: int, prefix: str = DEFAULT_PREFIX) -> None:
        self._gcra = redis.register_script(_GCRA)
        self._window = redis.register_script(_WINDOW)
        self._take = redis.register_script(_TAKE)
        self._block = redis.register_script(_BLOCK)
        self._base = f"{prefix}:{bot_id}:{{rl}}"

    def chat(self, chat_id: int) -> str:
        """Key of one chat's budget (Telegram: about 1 message/s per chat), for :meth:`acquire`."""
        return f"{self._base}:c:{chat_id}"

    def bot(self) -> str:
        """Key of the bot-wide budget (Telegram: about 30 messages/s in all), for :meth:`window`."""
        return f"{self._base}:bot"

    async def acquire(
        self, name: str, *, period: float, burst: int = 1, cost: int = 1, reserve: int = 0
    ) -> float:
        """Book ``cost`` units of the GCRA ``name`` and return 0.0, or book nothing and return the
        seconds to wait. ``period`` is the seconds per unit (1/rate); up to ``burst`` units may go
        at once, and ``reserve`` units must be left over after this grant."""
        _check_gcra(period, burst, cost, reserve)
        wait_us = await self._gcra(keys=[name], args=[_micros(period), burst, cost, reserve])
        return int(wait_us) / _US  # an integer reply: same with or without decode_responses

    async def window(self, name: str, *, limit: int, span: float = 1.0, reserve: int = 0) -> float:
        """Book one unit under "at most ``limit`` in any ``span`` seconds" and return 0.0, or book
        nothing and return the seconds until one may go. ``reserve`` units of the window are left
        to callers asking with a smaller reserve (what must not wait: an answer's final text)."""
        _check_window(span, limit, reserve)
        wait_us = await self._window(keys=[name], args=[_micros(span), limit, reserve])
        return int(wait_us) / _US

    async def take(
        self, chat: str, bot: str, *, period: float, burst: int, reserve: int, limit: int,
        bot_reserve: int, span: float = 1.0,
    ) -> tuple[float, float | None]:
        """One unit of the GCRA ``chat``, then one of the window ``bot``, in one round trip:
        (the chat's wait, the bot's wait), 0.0 meaning booked; the bot's is None when the chat
        refused (then nothing was booked)."""
        _check_gcra(period, burst, 1, reserve)
        _check_window(span, limit, bot_reserve)
        chat_us, bot_us = await self._take(keys=[chat, bot], args=[
            _micros(period), burst, reserve, _micros(span), limit, bot_reserve,
        ])
        return int(chat_us) / _US, None if int(bot_us) < 0 else int(bot_us) / _US

    async def block(self, name: str, seconds: float) -> None:
        """Refuse everything on ``name`` for ``seconds`` from now (Telegram's 429 retry_after)."""
        if seconds > 0:
            await self._block(keys=[name], args=[math.ceil(seconds * _US)])


def _micros(seconds: float) -> int:
    return max(1, round(seconds * _US))


def _check_gcra(period: float, burst: int, cost: int, reserve: int) -> None:
    if not (period > 0 and cost >= 1 and reserve >= 0 and cost + reserve <= burst):
        raise ValueError(f"need period > 0 and 1 <= cost, 0 <= reserve, cost + reserve <= burst "
                         f"(got {period}, {cost}, {reserve}, {burst})")


def _check_window(span: float, limit: int, reserve: int) -> None:
    if not (span > 0 and 0 <= reserve < limit):
        raise ValueError(f"need span > 0 and 0 <= reserve < limit (got {span}, {reserve}, {limit})")
