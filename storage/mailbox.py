"""Per-chat mailboxes with leases: every update handled once, in order, by one replica at a time.

An update is *recorded* (deduplicated by ``update_id`` and appended to its chat's mailbox) in
one script, which also tries to take the chat's lease: the recorder that gets it drains the
mailbox. The holder reads the head, works on it, and removes it when done (``done``), all in
scripts that check the lease is still its own. ``next`` gives the lease up atomically when the
mailbox is empty, so an update recorded at that moment is never stranded: either the holder
sees it, or the recorder takes the free lease.

A replica that dies leaves its lease to expire. Every replica sweeps a *pending* index (a
sorted set of chats that received mail, scored by a counter) and claims chats whose lease is
free. The head item stays in the mailbox until ``done``, and the *turn* record beside it says
how far its answer got, so the taker can finish the job honestly.

All keys of one chat share a hash tag (``{c:<chat>}``), so the scripts run on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from storage import keys
from storage.scripts import pipelined

DEDUPE_MS = 86_400_000  # Telegram keeps an unconfirmed update for at most a day

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))
if redis.call('ZADD', KEYS[3], 'NX', now, ARGV[1]) == 0 then return -1 end
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('RPUSH', KEYS[1], now .. ' ' .. ARGV[2])
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"""

_NEXT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'lost'} end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  return {'empty'}
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local turn = redis.call('GET', KEYS[3]) or ''
local out = {'items', tostring(now), turn}
for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)) do
  out[#out + 1] = item
end
return out
"""

_CHECKED_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""

_DONE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV do redis.call('LREM', KEYS[1], 1, ARGV[i]) end
redis.call('DEL', KEYS[3])
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""

_CLAIM = """
if redis.call('LLEN', KEYS[2]) == 0 then return -1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

_TOUCH = """
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
"""

_UNTOUCH = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('ZREM', KEYS[1], ARGV[1]) end
"""


@dataclass(frozen=True, slots=True)
class Item:
    """One recorded update: its raw mailbox entry, when Redis took it (ms) and its JSON."""

    raw: str
    at_ms: int
    body: str

    @classmethod
    def parse(cls, raw: str) -> Item:
        stamp, _, body = raw.partition(" ")
        return cls(raw, int(stamp), body)


@dataclass(frozen=True, slots=True)
class Peek:
    """What the holder sees: Redis time (ms), the head's turn record ('' if none), the first items."""

    now_ms: int
    turn: str
    items: tuple[Item, ...]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisMailbox:
    """Mailboxes, leases and turn records of one bot's chats (``route`` is the chat's id)."""

    def __init__(
        self, redis: Redis, *, bot_id: int, lease_ms: int = 15_000, turn_ttl_ms: int = DEDUPE_MS,
        prefix: str = keys.DEFAULT_PREFIX,
    ) -> None:
        self._redis = redis
        self._bot_id = bot_id
        self._prefix = prefix
        self.lease_ms = lease_ms
        self._turn_ttl = turn_ttl_ms
        self._record = redis.register_script(_RECORD)
        self._next = redis.register_script(_NEXT)
        self._checked_set = redis.register_script(_CHECKED_SET)
        self._done = redis.register_script(_DONE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._claim = redis.register_script(_CLAIM)
        self._touch = redis.register_script(_TOUCH)
        self._untouch = redis.register_script(_UNTOUCH)

    def _k(self, route: str, part: str) -> str:
        return keys.chat_key(self._bot_id, route, part, self._prefix)

    async def record(self, route: str, update_id: int, body: str, token: str) -> int | None:
        """Record an update: None if it was seen before, else 1 when ``token`` now holds the lease
        (the caller should drain the mailbox) and 0 when another holder will see it."""
        pending = keys.pending_key(self._bot_id, self._prefix)
        index = [pending, f"{pending}:seq"]
        # A chat may be listed with an empty mailbox, never the reverse. The index is touched
        # before the append and again after it: a sweeper may read the first touch's score, find
        # the mailbox still empty and drop the entry before the append runs (the two scripts are
        # not atomic together; on a cluster they run on different nodes), and then only the
        # second touch lists the new mail for a takeover. (Sent again whole if Redis lost the
        # scripts: the update is recorded once all the same, and a touch more is harmless.)
        _, result, _ = await pipelined(self._redis, [
            (self._touch, index, [route]),
            (self._record, [self._k(route, "mail"), self._k(route, "lease"), self._k(route, "seen")],
             [update_id, body, token, self.lease_ms, DEDUPE_MS]),
            (self._touch, index, [route]),
        ])
        return None if int(result) < 0 else int(result)

    async def next(self, route: str, token: str, window: int = 10) -> Peek | None:
        """The head of the mailbox (and up to ``window`` items), renewing the lease; None when the
        lease is no longer ours or the mailbox was empty (then the lease is given up)."""
        reply = await self._next(
            keys=[self._k(route, "mail"), self._k(route, "lease"), self._k(route, "turn")],
            args=[token, self.lease_ms, window],
        )
        if _text(reply[0]) != "items":
            return None
        items = tuple(Item.parse(_text(raw)) for raw in reply[3:])
        return Peek(int(_text(reply[1])), _text(reply[2]), items)

    async def save_turn(self, route: str, token: str, turn: str) -> bool:
        """Write the head's turn record, if the lease is still ours."""
        result = await self._checked_set(
            keys=[self._k(route, "lease"), self._k(route, "turn")], args=[token, turn, self._turn_ttl]
        )
        return bool(result)

    async def turn(self, route: str) -> str:
        """The chat's running turn record ('' when no turn is running), for anyone to read."""
        raw = await self._redis.get(self._k(route, "turn"))
        return _text(raw) if raw is not None else ""

    async def done(self, route: str, token: str, items: Sequence[Item]) -> bool:
        """Remove finished items and their turn record, if the lease is still ours."""
        result = await self._done(
            keys=[self._k(route, "mail"), self._k(route, "lease"), self._k(route, "turn")],
            args=[token, *(item.raw for item in items)],
        )
        return bool(result)

    async def renew(self, route: str, token: str) -> bool:
        [kept] = await self.renew_all([(route, token)])
        return kept

    async def renew_all(self, held: Sequence[tuple[str, str]]) -> list[bool]:
        """Renew each ``(route, token)`` lease that is still the token's, in one round trip;
        which ones were."""
        calls = [(self._renew, [self._k(route, "lease")], [token, self.lease_ms]) for route, token in held]
        return [bool(result) for result in await pipelined(self._redis, calls)]

    async def release(self, route: str, token: str) -> None:
        """Give the lease up even though mail may be waiting (shutdown): a sweeper takes it."""
        await self._release(keys=[self._k(route, "lease")], args=[token])

    async def pending(self, limit: int = 200) -> list[tuple[str, int]]:
        """Chats that received mail, least recently first, with their index scores."""
        pending = keys.pending_key(self._bot_id, self._prefix)
        rows: list[Any] = await self._redis.zrange(pending, 0, limit - 1, withscores=True)
        return [(_text(member), int(score)) for member, score in rows]

    async def claim(self, route: str, score: int, token: str) -> bool:
        [claimed] = await self.claim_all([(route, score, token)])
        return claimed

    async def claim_all(self, rows: Sequence[tuple[str, int, str]]) -> list[bool]:
        """Take each ``(route, score, token)`` chat whose lease is free and whose mailbox holds
        mail, in one round trip; which ones were taken. Chats found with an empty mailbox leave
        the index (in one more round trip), unless mail arrived since ``score`` was read."""
        calls = [(self._claim, [self._k(route, "lease"), self._k(route, "mail")], [token, self.lease_ms])
                 for route, _, token in rows]
        results = [int(result) for result in await pipelined(self._redis, calls)]
        index = [keys.pending_key(self._bot_id, self._prefix)]
        await pipelined(self._redis, [(self._untouch, index, [route, score])
                                      for (route, score, _), result in zip(rows, results, strict=True)
                                      if result < 0])
        return [result == 1 for result in results]

    async def depth(self, routes: Sequence[str]) -> int:
        """Updates waiting in these chats' mailboxes (for metrics)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.llen(self._k(route, "mail"))
            return sum(int(n) for n in await pipe.execute())
