"""Token usage per Telegram user and bot-wide, and per-user quotas (daily tokens, messages a minute)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis

from storage.keys import (
    DEFAULT_PREFIX,
    all_day_key,
    all_total_key,
    rate_key,
    user_day_key,
    user_total_key,
)

# Keys (a user's share the hash tag {u:<user>}, so the admit script's two keys sit in one cluster slot):
#   {prefix}:{bot_id}:usage:{u:<user>}:d<YYYY-MM-DD>  tokens the user used that UTC day     TTL 3 days
#   {prefix}:{bot_id}:usage:{u:<user>}:total          tokens the user ever used             no TTL
#   {prefix}:{bot_id}:usage:all:d<YYYY-MM-DD>         tokens the bot used that UTC day      TTL 3 days
#   {prefix}:{bot_id}:usage:all:total                 tokens the bot ever used              no TTL
#   {prefix}:{bot_id}:rate:{u:<user>}                 sorted set of admitted message times  TTL 60 s
# Totals keep no TTL: they are the lifetime record (one integer per user who ever wrote), and one
# that expired would silently restart from zero. Day counters outlive their day by at least two days.

DAY_SECONDS = 86_400
DAY_TTL_SECONDS = 3 * DAY_SECONDS
RATE_WINDOW_SECONDS = 60.0

# KEYS: today's token counter, the admitted-message times. ARGV: now, token limit or "", rate limit or "",
# window, a unique member. Returns {0} admitted (and counted), {1} over the token limit, or {2, score}
# over the rate limit: score is the admitted time whose leaving the window frees a slot ("" if none).
_ADMIT_LUA = """
if ARGV[2] ~= '' and tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[2]) then
  return {1}
end
if ARGV[3] ~= '' then
  local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[2])
  if count >= limit then
    local freeing = redis.call('ZRANGE', KEYS[2], count - limit, count - limit, 'WITHSCORES')
    return {2, freeing[2] or ''}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
end
return {0}
"""


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def seconds_to_utc_midnight(now: float) -> float:
    return DAY_SECONDS - now % DAY_SECONDS  # POSIX days are exactly 86 400 s


@dataclass(frozen=True, slots=True)
class Usage:
    today: int
    total: int


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    reason: Literal["ok", "tokens", "rate"]
    reset_in: float  # seconds until the refusing limit lets a message through again; 0 when allowed


_ADMITTED = Admission(allowed=True, reason="ok", reset_in=0.0)


class RedisUsage:
    """Usage counters and quota checks, each call one round trip.

    One clock decides: ``now`` (``time.time()`` unless given) picks the UTC day key and places a message
    in the rate window; the client must name the day key anyway (scripts are handed their keys), replicas
    are NTP-synced, and tests move time by hand. Tokens are recorded after an answer, so messages in
    flight together may overshoot the daily limit by their own use; the message rate is exact (atomic).
    """

    def __init__(self, redis: Redis, *, bot_id: int, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = redis
        self._bot_id = bot_id
        self._prefix = prefix
        self._admit_script = redis.register_script(_ADMIT_LUA)

    async def record(self, user_id: int, tokens: int, *, now: float | None = None) -> None:
        """Add an answer's tokens to the user's and the bot's day and total counters (none if <= 0)."""
        if tokens <= 0:
            return
        day = utc_day(time.time() if now is None else now)
        user_day = user_day_key(self._bot_id, user_id, day, self._prefix)
        all_day = all_day_key(self._bot_id, day, self._prefix)
        # not MULTI: the user's and the bot-wide keys live in different cluster slots
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in (user_day, all_day):
                pipe.incrby(name, tokens)
                pipe.expire(name, DAY_TTL_SECONDS)
            pipe.incrby(user_total_key(self._bot_id, user_id, self._prefix), tokens)
            pipe.incrby(all_total_key(self._bot_id, self._prefix), tokens)
            await pipe.execute()

    async def usage(self, user_id: int, *, now: float | None = None) -> Usage:
        """The user's tokens for the current UTC day and ever."""
        day = utc_day(time.time() if now is None else now)
        today, total = await self._redis.mget(  # one slot: both keys carry the {u:<user>} tag
            user_day_key(self._bot_id, user_id, day, self._prefix),
            user_total_key(self._bot_id, user_id, self._prefix),
        )
        return Usage(today=int(today or 0), total=int(total or 0))  # int() takes bytes or str

    async def bot_usage(self, *, now: float | None = None) -> Usage:
        """The whole bot's tokens for the current UTC day and ever."""
        day = utc_day(time.time() if now is None else now)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(all_day_key(self._bot_id, day, self._prefix))
            pipe.get(all_total_key(self._bot_id, self._prefix))
            today, total = await pipe.execute()
        return Usage(today=int(today or 0), total=int(total or 0))

    async def admit(
        self, user_id: int, *, daily_tokens: int | None, per_minute: int | None, now: float | None = None
    ) -> Admission:
        """May the user send a message now? If so it is counted against ``per_minute``; None is unlimited.

        One EVALSHA; only a Redis that lacks the script (new, failed over) costs a SCRIPT LOAD and retry.
        """
        if daily_tokens is None and per_minute is None:
            return _ADMITTED
        at = time.time() if now is None else now
        day_key = user_day_key(self._bot_id, user_id, utc_day(at), self._prefix)
        reply = await self._admit_script(
            keys=[day_key, rate_key(self._bot_id, user_id, self._prefix)],
            args=[
                repr(at),
                "" if daily_tokens is None else daily_tokens,
                "" if per_minute is None else per_minute,
                RATE_WINDOW_SECONDS,
                f"{at!r}:{secrets.token_hex(8)}",  # unique even for messages at the same instant
            ],
        )
        code = int(reply[0])
        if code == 0:
            return _ADMITTED
        if code == 1:
            return Admission(allowed=False, reason="tokens", reset_in=seconds_to_utc_midnight(at))
        freeing = reply[1]  # bytes or str; float() takes either
        reset_in = float(freeing) + RATE_WINDOW_SECONDS - at if freeing else RATE_WINDOW_SECONDS
        return Admission(allowed=False, reason="rate", reset_in=reset_in)
