"""Per-chat Redis mailboxes against a real Redis: dedupe, order, leases, turn records, takeover, cluster slots.

Two ``RedisMailbox`` objects on two clients stand for two replicas. A replica's death is simulated by
deleting its lease key (or by a one-millisecond lease), never by waiting out a real lease.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.crc import key_slot

from storage.keys import chat_key, pending_key
from storage.mailbox import DEDUPE_MS, Item, RedisMailbox

BOT = 31
CHAT = "-1001234"
OTHER_CHAT = "555"


def make(redis: Redis, **options: Any) -> RedisMailbox:
    return RedisMailbox(redis, bot_id=BOT, **options)


def key(route: str, part: str) -> str:
    return chat_key(BOT, route, part)


def body(update_id: int, text: str = "hi") -> str:
    return json.dumps({"update_id": update_id, "message": {"text": text}}, ensure_ascii=False)


async def redis_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def mail(redis: Redis, route: str = CHAT) -> list[Item]:
    return [Item.parse(raw.decode()) for raw in await redis.lrange(key(route, "mail"), 0, -1)]


async def lease_holder(redis: Redis, route: str = CHAT) -> str | None:
    value = await redis.get(key(route, "lease"))
    return None if value is None else value.decode()


async def die(redis: Redis, route: str = CHAT) -> None:
    """The holder's process is gone and its lease lapsed."""
    await redis.delete(key(route, "lease"))


@pytest.fixture(name="other")
async def _other(redis_url: str, redis: Redis) -> AsyncIterator[Redis]:
    """A second client on the same (already flushed) Redis: another replica."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose(close_connection_pool=True)


# --- record ---------------------------------------------------------------------------------


async def test_first_record_takes_the_lease(redis: Redis) -> None:
    """The first update of an idle chat returns 1, the recorder's token holds the lease, the update is in the mailbox."""
    box = make(redis, lease_ms=20_000)
    assert await box.record(CHAT, 1, body(1), "A") == 1
    assert await lease_holder(redis) == "A"
    assert 19_000 < await redis.pttl(key(CHAT, "lease")) <= 20_000
    assert [item.body for item in await mail(redis)] == [body(1)]


async def test_second_record_while_lease_held_returns_0(redis: Redis) -> None:
    """Another update of the same chat with another token returns 0 and leaves the lease with its holder."""
    box = make(redis)
    assert await box.record(CHAT, 1, body(1), "A") == 1
    assert await box.record(CHAT, 2, body(2), "B") == 0
    assert await lease_holder(redis) == "A"
    assert [item.body for item in await mail(redis)] == [body(1), body(2)]


async def test_record_is_one_round_trip_and_survives_lost_scripts(redis: Redis) -> None:
    """Recording sends its scripts by SHA, never asking SCRIPT EXISTS first; when Redis has lost
    them (a restart, SCRIPT FLUSH) they are loaded again and the update is recorded once."""
    box = make(redis)
    await redis.config_resetstat()
    assert await box.record(CHAT, 1, body(1), "A") == 1
    await redis.script_flush()
    assert await box.record(CHAT, 2, body(2), "B") == 0
    assert await box.record(CHAT, 2, body(2), "B") is None
    assert [item.body for item in await mail(redis)] == [body(1), body(2)]
    assert await redis.zrange(pending_key(BOT), 0, -1) == [CHAT.encode()]
    stats = await redis.info("commandstats")
    assert "cmdstat_script|exists" not in stats
    assert stats["cmdstat_script|load"]["calls"] == 2  # the two scripts, once each


async def test_duplicate_update_is_dropped(redis: Redis) -> None:
    """An update_id recorded before returns None and is not appended again, whatever its token or body."""
    box = make(redis)
    assert await box.record(CHAT, 1, body(1), "A") == 1
    assert await box.record(CHAT, 1, body(1), "B") is None
    assert await box.record(CHAT, 1, body(1, "changed"), "A") is None
    assert len(await mail(redis)) == 1
    assert await lease_holder(redis) == "A"


async def test_duplicate_from_another_replica_is_dropped(redis: Redis, other: Redis) -> None:
    """A second RedisMailbox on its own client sees the first one's update_id as a duplicate, even once it is done."""
    a, b = make(redis), make(other)
    assert await a.record(CHAT, 7, body(7), "A") == 1
    assert await b.record(CHAT, 7, body(7), "B") is None
    assert len(await mail(redis)) == 1
    peek = await a.next(CHAT, "A")
    assert peek is not None
    assert await a.done(CHAT, "A", peek.items)
    assert await a.next(CHAT, "A") is None
    assert await b.record(CHAT, 7, body(7), "B") is None
    assert await mail(redis) == []
    assert await lease_holder(redis) is None


async def test_dedupe_forgets_after_a_day(redis: Redis) -> None:
    """An update_id seen more than DEDUPE_MS ago is recorded again; the seen set itself expires within a day."""
    box = make(redis)
    assert await box.record(CHAT, 1, body(1), "A") == 1
    assert 0 < await redis.pttl(key(CHAT, "seen")) <= DEDUPE_MS
    now = await redis_ms(redis)
    await redis.zadd(key(CHAT, "seen"), {"1": now - DEDUPE_MS - 1}, xx=True)
    assert await box.record(CHAT, 1, body(1), "B") == 0
    assert len(await mail(redis)) == 2
    assert await redis.zcard(key(CHAT, "seen")) == 1


async def test_chats_are_independent(redis: Redis) -> None:
    """Each chat has its own lease, mailbox and dedupe: a busy chat does not stop another's recorder draining."""
    box = make(redis)
    assert await box.record(CHAT, 1, body(1), "A") == 1
    assert await box.record(OTHER_CHAT, 2, body(2), "B") == 1
    assert await box.record(OTHER_CHAT, 1, body(1), "C") == 0  # seen sets are per chat
    assert (await lease_holder(redis), await lease_holder(redis, OTHER_CHAT)) == ("A", "B")
    assert [i.body for i in await mail(redis)] == [body(1)]
    assert [i.body for i in await mail(redis, OTHER_CHAT)] == [body(2), body(1)]
    peek = await box.next(CHAT, "A")
    assert peek is not None
    assert await box.done(CHAT, "A", peek.items)
    assert await box.next(CHAT, "A") is None
    assert await lease_holder(redis, OTHER_CHAT) == "B"
    assert await box.depth([OTHER_CHAT]) == 2


async def test_bots_and_prefixes_do_not_share_mailboxes(redis: Redis) -> None:
    """Another bot id or key prefix has its own mailboxes, leases, dedupe and index."""
    mine, theirs = make(redis), RedisMailbox(redis, bot_id=BOT + 1)
    prefixed = RedisMailbox(redis, bot_id=BOT, prefix="other")
    assert await mine.record(CHAT, 1, body(1), "A") == 1
    assert await theirs.record(CHAT, 1, body(1), "B") == 1
    assert await prefixed.record(CHAT, 1, body(1), "C") == 1
    assert [route for route, _ in await theirs.pending()] == [CHAT]
    assert await mine.depth([CHAT]) == await theirs.depth([CHAT]) == await prefixed.depth([CHAT]) == 1


async def test_pending_index_lists_chats_least_recent_first(redis: Redis) -> None:
    """Every recorded chat is in the pending index, ordered by its latest mail, with increasing scores."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    assert [route for route, _ in await box.pending()] == [CHAT]
    await box.record(OTHER_CHAT, 2, body(2), "B")
    await box.record(CHAT, 3, body(3), "C")
    rows = await box.pending()
    assert [route for route, _ in rows] == [OTHER_CHAT, CHAT]
    assert rows[0][1] < rows[1][1]
    assert all(isinstance(score, int) for _, score in rows)
    assert [route for route, _ in await box.pending(limit=1)] == [OTHER_CHAT]


# --- next -----------------------------------------------------------------------------------


async def test_next_returns_items_in_arrival_order_with_redis_time(redis: Redis) -> None:
    """Items come back oldest first, stamped with Redis time at recording, bodies intact (spaces, non-ASCII)."""
    box = make(redis)
    bodies = [body(1, "hello world"), body(2, "你好 😀 \n tabs\tand  spaces"), " leading and trailing ", ""]
    before = await redis_ms(redis)
    for i, text in enumerate(bodies, start=1):
        await box.record(CHAT, i, text, f"t{i}")
        await asyncio.sleep(0.001)
    after = await redis_ms(redis)
    peek = await box.next(CHAT, "t1")
    assert peek is not None
    assert [item.body for item in peek.items] == bodies
    stamps = [item.at_ms for item in peek.items]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after
    assert after <= peek.now_ms <= await redis_ms(redis)
    assert peek.turn == ""
    assert all(item == Item.parse(item.raw) for item in peek.items)


async def test_next_respects_window(redis: Redis) -> None:
    """next returns at most ``window`` items, always starting at the head; the default window is 10."""
    box = make(redis)
    for i in range(12):
        await box.record(CHAT, i, body(i), "A" if i == 0 else f"x{i}")
    one = await box.next(CHAT, "A", window=1)
    three = await box.next(CHAT, "A", window=3)
    default = await box.next(CHAT, "A")
    assert one is not None and three is not None and default is not None
    assert [i.body for i in one.items] == [body(0)]
    assert [i.body for i in three.items] == [body(0), body(1), body(2)]
    assert [i.body for i in default.items] == [body(i) for i in range(10)]
    assert await box.depth([CHAT]) == 12  # reading takes nothing off


async def test_next_refuses_a_non_holder(redis: Redis) -> None:
    """next returns None for a token without the lease and leaves the holder's lease and mail alone."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    ttl = await redis.pttl(key(CHAT, "lease"))
    assert await box.next(CHAT, "B") is None
    assert await lease_holder(redis) == "A"
    assert await redis.pttl(key(CHAT, "lease")) <= ttl
    assert len(await mail(redis)) == 1


async def test_non_holder_next_on_empty_mailbox_keeps_the_lease(redis: Redis) -> None:
    """An empty mailbox releases the lease only for its holder: a stranger's next leaves it in place."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    peek = await box.next(CHAT, "A")
    assert peek is not None
    assert await box.done(CHAT, "A", peek.items)
    assert await box.next(CHAT, "B") is None
    assert await lease_holder(redis) == "A"


async def test_next_on_empty_mailbox_releases_the_lease(redis: Redis, other: Redis) -> None:
    """When the holder finds the mailbox empty it gets None and the lease is gone, so the next recorder (any replica) drains."""
    a, b = make(redis), make(other)
    assert await a.record(CHAT, 1, body(1), "A") == 1
    peek = await a.next(CHAT, "A")
    assert peek is not None
    assert await a.save_turn(CHAT, "A", "stale")
    assert await a.done(CHAT, "A", peek.items)
    assert await a.save_turn(CHAT, "A", "left over")
    assert await a.next(CHAT, "A") is None
    assert await lease_holder(redis) is None
    assert await redis.exists(key(CHAT, "turn")) == 0
    assert await a.next(CHAT, "A") is None  # and it stays given up
    assert await b.record(CHAT, 2, body(2), "B") == 1
    peek = await b.next(CHAT, "B")
    assert peek is not None
    assert ([i.body for i in peek.items], peek.turn) == ([body(2)], "")


async def test_update_recorded_while_holder_works_is_seen_by_holder(redis: Redis, other: Redis) -> None:
    """Mail recorded by another replica before the holder's empty check is handed to the holder, not lost."""
    a, b = make(redis), make(other)
    assert await a.record(CHAT, 1, body(1), "A") == 1
    peek = await a.next(CHAT, "A")
    assert peek is not None
    assert await b.record(CHAT, 2, body(2), "B") == 0
    assert await a.done(CHAT, "A", peek.items)
    peek = await a.next(CHAT, "A")
    assert peek is not None
    assert [i.body for i in peek.items] == [body(2)]
    assert await lease_holder(redis) == "A"


async def test_next_renews_the_lease(redis: Redis) -> None:
    """next pushes the lease's expiry back to a full lease_ms."""
    box = make(redis, lease_ms=10_000)
    await box.record(CHAT, 1, body(1), "A")
    await redis.pexpire(key(CHAT, "lease"), 50)
    assert await box.next(CHAT, "A") is not None
    assert 9_000 < await redis.pttl(key(CHAT, "lease")) <= 10_000


# --- save_turn and done ---------------------------------------------------------------------


async def test_turn_record_is_saved_only_by_the_holder(redis: Redis) -> None:
    """save_turn writes the turn record (with its TTL) for the holder and refuses anyone else; next shows the record."""
    box = make(redis, turn_ttl_ms=60_000)
    await box.record(CHAT, 1, body(1), "A")
    assert not await box.save_turn(CHAT, "B", "theirs")
    assert await redis.exists(key(CHAT, "turn")) == 0
    turn = json.dumps({"update_id": 1, "stage": "streaming", "text": "答案 so far"}, ensure_ascii=False)
    assert await box.save_turn(CHAT, "A", turn)
    assert 59_000 < await redis.pttl(key(CHAT, "turn")) <= 60_000
    assert not await box.save_turn(CHAT, "B", "theirs")
    peek = await box.next(CHAT, "A")
    assert peek is not None
    assert peek.turn == turn
    assert await box.save_turn(CHAT, "A", "later")
    peek = await box.next(CHAT, "A")
    assert peek is not None and peek.turn == "later"


async def test_done_removes_exactly_the_given_items(redis: Redis) -> None:
    """done takes out the given items even when not contiguous (an album's parts), keeps the rest in order, drops the turn record."""
    box = make(redis)
    texts = ["album 1", "other", "album 2", "later"]
    for i, text in enumerate(texts):
        await box.record(CHAT, i, body(i, text), "A" if i == 0 else f"t{i}")
    peek = await box.next(CHAT, "A")
    assert peek is not None
    assert await box.save_turn(CHAT, "A", "turn of the album")
    album = [peek.items[0], peek.items[2]]
    assert await box.done(CHAT, "A", album)
    assert [i.body for i in await mail(redis)] == [body(1, "other"), body(3, "later")]
    assert await redis.exists(key(CHAT, "turn")) == 0
    peek = await box.next(CHAT, "A")
    assert peek is not None
    assert (peek.turn, [i.body for i in peek.items]) == ("", [body(1, "other"), body(3, "later")])


async def test_done_with_identical_bodies_removes_one_each(redis: Redis) -> None:
    """Two updates with the same body are separate items: done on one leaves the other."""
    box = make(redis)
    await box.record(CHAT, 1, "same", "A")
    await box.record(CHAT, 2, "same", "B")
    peek = await box.next(CHAT, "A")
    assert peek is not None and len(peek.items) == 2
    assert await box.done(CHAT, "A", peek.items[:1])
    assert len(await mail(redis)) == 1


async def test_done_is_refused_to_a_non_holder(redis: Redis) -> None:
    """done by a token without the lease removes nothing and keeps the turn record."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    peek = await box.next(CHAT, "A")
    assert peek is not None
    assert await box.save_turn(CHAT, "A", "turn")
    assert not await box.done(CHAT, "B", peek.items)
    assert len(await mail(redis)) == 1
    assert await redis.get(key(CHAT, "turn")) == b"turn"


# --- renew and release ----------------------------------------------------------------------


async def test_renew_only_for_the_holder(redis: Redis) -> None:
    """renew is False for a non-holder (and creates nothing once the lease is gone), True and extending for the holder."""
    box = make(redis, lease_ms=10_000)
    assert not await box.renew(CHAT, "A")
    assert await redis.exists(key(CHAT, "lease")) == 0
    await box.record(CHAT, 1, body(1), "A")
    await redis.pexpire(key(CHAT, "lease"), 50)
    assert not await box.renew(CHAT, "B")
    assert await redis.pttl(key(CHAT, "lease")) <= 50
    assert await box.renew(CHAT, "A")
    assert 9_000 < await redis.pttl(key(CHAT, "lease")) <= 10_000
    await die(redis)
    assert not await box.renew(CHAT, "A")
    assert await redis.exists(key(CHAT, "lease")) == 0


async def test_renew_all_renews_each_lease_still_held_in_one_round_trip(redis: Redis) -> None:
    """Several chats' leases renewed together: each one still the token's is extended, the one
    another replica holds is left alone and reported lost."""
    box = make(redis, lease_ms=10_000)
    for route, token in (("1", "A"), ("2", "A"), ("3", "B")):
        await box.record(route, 1, body(1), token)
        await redis.pexpire(key(route, "lease"), 50)
    await redis.config_resetstat()
    assert await box.renew_all([("1", "A"), ("2", "A"), ("3", "A")]) == [True, True, False]
    assert [await redis.pttl(key(route, "lease")) > 9_000 for route in "123"] == [True, True, False]
    assert await lease_holder(redis, "3") == "B"
    assert await box.renew_all([]) == []
    stats = await redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 3 and "cmdstat_script|exists" not in stats


async def test_release_by_a_non_holder_does_nothing(redis: Redis) -> None:
    """release with someone else's token leaves the lease with its holder."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    await box.release(CHAT, "B")
    assert await lease_holder(redis) == "A"
    assert await box.renew(CHAT, "A")


async def test_after_release_another_token_can_claim(redis: Redis, other: Redis) -> None:
    """The holder's release frees the chat: its mail and turn record stay, a sweeper claims it and sees both."""
    a, b = make(redis), make(other)
    await a.record(CHAT, 1, body(1), "A")
    assert await a.save_turn(CHAT, "A", "turn")
    await a.release(CHAT, "A")
    assert await lease_holder(redis) is None
    assert not await a.renew(CHAT, "A")
    [(route, score)] = await b.pending()
    assert await b.claim(route, score, "B")
    assert await lease_holder(redis) == "B"
    peek = await b.next(CHAT, "B")
    assert peek is not None
    assert ([i.body for i in peek.items], peek.turn) == ([body(1)], "turn")


async def test_after_release_a_recorder_takes_the_lease(redis: Redis) -> None:
    """Once the lease is released, the next update's recorder gets it (and with it the older mail)."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    await box.release(CHAT, "A")
    assert await box.record(CHAT, 2, body(2), "B") == 1
    peek = await box.next(CHAT, "B")
    assert peek is not None
    assert [i.body for i in peek.items] == [body(1), body(2)]


# --- claim ----------------------------------------------------------------------------------


async def test_claim_takes_a_chat_whose_lease_lapsed(redis: Redis, other: Redis) -> None:
    """A chat with mail whose one-millisecond lease lapsed is claimed by a sweeper, with the sweeper's lease_ms."""
    dead, sweeper = make(redis, lease_ms=1), make(other, lease_ms=10_000)
    assert await dead.record(CHAT, 1, body(1), "A") == 1
    await asyncio.sleep(0.005)
    [(route, score)] = await sweeper.pending()
    assert route == CHAT
    assert await sweeper.claim(route, score, "S")
    assert await lease_holder(redis) == "S"
    assert 9_000 < await redis.pttl(key(CHAT, "lease")) <= 10_000
    assert [r for r, _ in await sweeper.pending()] == [CHAT]  # listed while it has mail
    assert not await sweeper.claim(route, score, "T")  # now held


async def test_claim_leaves_a_live_lease_alone(redis: Redis, other: Redis) -> None:
    """A chat whose lease is alive is not claimed, and stays in the index."""
    holder, sweeper = make(redis), make(other)
    await holder.record(CHAT, 1, body(1), "A")
    [(route, score)] = await sweeper.pending()
    assert not await sweeper.claim(route, score, "S")
    assert await lease_holder(redis) == "A"
    assert await sweeper.pending() == [(route, score)]


async def test_claim_drops_a_chat_with_an_empty_mailbox(redis: Redis, other: Redis) -> None:
    """A listed chat whose mailbox is empty is not claimed (no lease taken) and leaves the index."""
    holder, sweeper = make(redis), make(other)
    await holder.record(CHAT, 1, body(1), "A")
    await holder.record(OTHER_CHAT, 2, body(2), "B")
    peek = await holder.next(CHAT, "A")
    assert peek is not None
    assert await holder.done(CHAT, "A", peek.items)
    assert await holder.next(CHAT, "A") is None
    rows = dict(await sweeper.pending())
    assert not await sweeper.claim(CHAT, rows[CHAT], "S")
    assert await lease_holder(redis) is None
    assert [r for r, _ in await sweeper.pending()] == [OTHER_CHAT]


async def test_claim_all_sweeps_many_chats_in_two_round_trips(redis: Redis, other: Redis) -> None:
    """Listed chats claimed together: the one with mail and a lapsed lease is taken, the one
    still held is left alone and stays listed, the emptied one leaves the index; all in one
    pipeline of claims and one of index removals."""
    holder, sweeper = make(redis), make(other)
    for route, token in (("1", "A"), ("2", "A"), ("3", "A")):
        await holder.record(route, 1, body(1), token)
    await die(redis, "1")
    peek = await holder.next("3", "A")
    assert peek is not None
    assert await holder.done("3", "A", peek.items)
    assert await holder.next("3", "A") is None
    rows = dict(await sweeper.pending())
    await redis.config_resetstat()
    claims = [(route, rows[route], "S") for route in "123"]
    assert await sweeper.claim_all(claims) == [True, False, False]
    assert [await lease_holder(redis, route) for route in "123"] == ["S", "A", None]
    assert sorted(r for r, _ in await sweeper.pending()) == ["1", "2"]
    stats = await redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 4 and "cmdstat_script|exists" not in stats
    assert await sweeper.claim_all([]) == []


async def test_claim_keeps_index_entry_when_mail_arrived_after_the_read(redis: Redis, other: Redis) -> None:
    """Mail recorded after the sweeper read a chat's score keeps the chat listed, whatever the stale claim finds."""
    holder, sweeper = make(redis), make(other)
    await holder.record(CHAT, 1, body(1), "A")
    peek = await holder.next(CHAT, "A")
    assert peek is not None
    assert await holder.done(CHAT, "A", peek.items)
    assert await holder.next(CHAT, "A") is None
    [(route, old)] = await sweeper.pending()

    assert await holder.record(CHAT, 2, body(2), "B") == 1
    assert not await sweeper.claim(route, old, "S")  # mail, lease held
    assert [r for r, _ in await sweeper.pending()] == [CHAT]

    peek = await holder.next(CHAT, "B")  # the new mail is handled before the stale claim runs again
    assert peek is not None
    assert await holder.done(CHAT, "B", peek.items)
    assert await holder.next(CHAT, "B") is None
    assert not await sweeper.claim(route, old, "S")  # empty, but the score moved on
    [(_, fresh)] = await sweeper.pending()
    assert fresh > old
    assert not await sweeper.claim(route, fresh, "S")  # empty and current: dropped
    assert await sweeper.pending() == []


async def test_a_duplicate_delivery_relists_the_chat(redis: Redis) -> None:
    """A duplicate delivery still refreshes the chat's index entry, so a stale read cannot drop it."""
    box = make(redis)
    await box.record(CHAT, 1, body(1), "A")
    [(_, old)] = await box.pending()
    assert await box.record(CHAT, 1, body(1), "B") is None
    [(_, new)] = await box.pending()
    assert new > old


class SteppedPipeline:
    """Stands in for a pipeline but runs its scripts one at a time, calling ``between`` after each
    one: the interleaving a real pipeline allows when Redis splits its commands (or, on a cluster,
    sends them to different nodes)."""

    def __init__(self, client: Redis, between: Callable[[int], Awaitable[None]]) -> None:
        self._client = client
        self._between = between
        self._calls: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> SteppedPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def evalsha(self, *args: Any) -> SteppedPipeline:
        self._calls.append(args)
        return self

    async def execute(self) -> list[Any]:
        results = []
        for args in self._calls:
            results.append(await self._client.evalsha(*args))
            await self._between(len(results))
        return results


async def test_sweeper_pruning_during_record_leaves_mail_listed(
    redis: Redis, other: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweeper that reads the new score and finds the mailbox still empty between the recorder's steps does not
    leave the recorded mail unlisted, so a recorder that then dies is taken over."""
    recorder, sweeper = make(redis), make(other)
    await recorder.record(CHAT, 1, body(1), "A")
    peek = await recorder.next(CHAT, "A")
    assert peek is not None
    assert await recorder.done(CHAT, "A", peek.items)
    assert await recorder.next(CHAT, "A") is None
    claimed: list[bool] = []
    listed: list[list[tuple[str, int]]] = []

    async def sweep_between(step: int) -> None:
        if step == 1:  # the recorder's first command ran, its append has not
            [(route, score)] = await sweeper.pending()
            claimed.append(await sweeper.claim(route, score, "S"))
            listed.append(await sweeper.pending())

    monkeypatch.setattr(redis, "pipeline", lambda transaction=True: SteppedPipeline(redis, sweep_between))
    assert await recorder.record(CHAT, 2, body(2), "B") == 1
    monkeypatch.undo()
    assert (claimed, listed) == ([False], [[]])  # the race did happen: the sweeper dropped the entry mid-record

    await die(redis)  # the recorder dies before draining
    rows = await sweeper.pending()
    assert [r for r, _ in rows] == [CHAT]
    assert await sweeper.claim(CHAT, rows[0][1], "S")
    peek = await sweeper.next(CHAT, "S")
    assert peek is not None and [i.body for i in peek.items] == [body(2)]


# --- takeover end to end --------------------------------------------------------------------


async def test_crash_takeover_end_to_end(redis: Redis, other: Redis) -> None:
    """A holder dies mid-turn: a sweeper claims the chat, sees the same head and the dead holder's turn record,
    and the dead holder's late writes are refused."""
    a, b = make(redis), make(other)
    assert await a.record(CHAT, 1, body(1, "first"), "A") == 1
    assert await b.record(CHAT, 2, body(2, "second"), "X") == 0
    seen_by_a = await a.next(CHAT, "A")
    assert seen_by_a is not None
    turn = json.dumps({"update_id": 1, "stage": "streaming", "message_id": 10})
    assert await a.save_turn(CHAT, "A", turn)

    await die(redis)
    [(route, score)] = await b.pending()
    assert await b.claim(route, score, "B")
    seen_by_b = await b.next(CHAT, "B")
    assert seen_by_b is not None
    assert seen_by_b.items == seen_by_a.items
    assert seen_by_b.items[0].body == body(1, "first")
    assert seen_by_b.turn == turn

    # A wakes up with its old token: every write is refused, nothing changes.
    assert not await a.save_turn(CHAT, "A", "overwrite")
    assert not await a.done(CHAT, "A", seen_by_a.items[:1])
    assert not await a.renew(CHAT, "A")
    assert await a.next(CHAT, "A") is None
    await a.release(CHAT, "A")
    assert await lease_holder(redis) == "B"
    assert await redis.get(key(CHAT, "turn")) == turn.encode()
    assert await b.depth([CHAT]) == 2

    # B finishes the head turn and moves on to the next update with a clean turn record.
    assert await b.done(CHAT, "B", seen_by_b.items[:1])
    peek = await b.next(CHAT, "B")
    assert peek is not None
    assert ([i.body for i in peek.items], peek.turn) == ([body(2, "second")], "")


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_records_grant_one_lease_and_keep_every_update_once(redis: Redis, other: Redis) -> None:
    """Concurrent records of one chat from two clients (each update delivered to both) grant the lease once while
    it is held; every update is appended exactly once, each sender's updates in the order it recorded them."""
    boxes = [make(redis), make(other)]
    senders, per_sender = 6, 20

    async def sender(s: int, box: RedisMailbox, base: int) -> list[tuple[int, int | None, str]]:
        outcomes = []
        for i in range(per_sender):
            uid = base + s * 1000 + i
            token = secrets.token_hex(8)
            outcomes.append((uid, await box.record(CHAT, uid, body(uid, f"{s}:{i}"), token), token))
        return outcomes

    async def burst(base: int) -> list[tuple[int, int | None, str]]:
        # Every sender's stream is delivered twice: once through each client, concurrently.
        results = await asyncio.gather(*(sender(s, box, base) for s in range(senders) for box in boxes))
        return list(itertools.chain.from_iterable(results))

    for round_, base in enumerate((0, 100_000)):
        outcomes = await burst(base)
        grants = [token for _, outcome, token in outcomes if outcome == 1]
        assert len(grants) == 1, f"round {round_}"
        assert await lease_holder(redis) == grants[0]
        recorded = [uid for uid, outcome, _ in outcomes if outcome is not None]
        assert sorted(recorded) == sorted({uid for uid, _, _ in outcomes})

        items = await mail(redis)
        uids = [json.loads(item.body)["update_id"] for item in items]
        assert sorted(uids) == sorted(recorded)
        for s in range(senders):
            mine = [u for u in uids if (u - base) // 1000 == s]
            assert mine == sorted(mine)
        stamps = [item.at_ms for item in items]
        assert stamps == sorted(stamps)

        # The holder drains everything, then gives the lease up: the next burst grants it once again.
        token = grants[0]
        while (peek := await boxes[0].next(CHAT, token)) is not None:
            assert await boxes[0].done(CHAT, token, peek.items)
        assert await lease_holder(redis) is None


# --- cluster safety -------------------------------------------------------------------------


class RecordingConnection(Connection):
    """A connection that remembers every command it packs (pipelines included)."""

    commands: ClassVar[list[tuple[Any, ...]]] = []

    def pack_command(self, *args: Any) -> list[bytes]:
        type(self).commands.append(args)
        return super().pack_command(*args)


def encoded(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


async def test_every_script_touches_one_slot(redis_url: str, redis: Redis) -> None:
    """Each script call's keys hash to one Redis Cluster slot, and the pending index shares a slot with its counter."""
    recorder = type("Recorder", (RecordingConnection,), {"commands": []})
    client = Redis.from_url(redis_url, connection_class=recorder)
    try:
        box = make(client)
        for route in (CHAT, OTHER_CHAT, "none"):
            assert await box.record(route, 1, body(1), "A") == 1
            assert await box.record(route, 1, body(1), "A") is None
            peek = await box.next(route, "A")
            assert peek is not None
            assert await box.save_turn(route, "A", "turn")
            assert await box.renew(route, "A")
            await box.release(route, "A")
            [score] = [s for r, s in await box.pending() if r == route]
            assert await box.claim(route, score, "B")
            assert await box.done(route, "B", peek.items)
            assert await box.next(route, "B") is None
            assert not await box.claim(route, score, "C")  # empty: the index entry is dropped
        assert await box.depth([CHAT, OTHER_CHAT]) == 0
    finally:
        await client.aclose(close_connection_pool=True)

    calls = [args for args in recorder.commands if encoded(args[0]).upper() == b"EVALSHA"]
    assert len({encoded(args[1]) for args in calls}) >= 9  # every script ran at least once
    for args in calls:
        keys = [encoded(k) for k in args[3:3 + int(args[2])]]
        assert keys
        assert len({key_slot(k) for k in keys}) == 1, keys
    for route in (CHAT, OTHER_CHAT, "none"):
        chat_keys = [key(route, part).encode() for part in ("mail", "lease", "seen", "turn")]
        assert len({key_slot(k) for k in chat_keys}) == 1
    index = pending_key(BOT)
    assert key_slot(index.encode()) == key_slot(f"{index}:seq".encode())
    stored = await redis.keys("*")
    assert stored and all(b"{c:" in k or b"{pending}" in k for k in stored)


# --- depth ----------------------------------------------------------------------------------


async def test_depth_counts_waiting_updates(redis: Redis) -> None:
    """depth sums the mailboxes of the given chats, unknown chats count zero, done items leave the count."""
    box = make(redis)
    assert await box.depth([]) == 0
    assert await box.depth([CHAT]) == 0
    for i in range(3):
        await box.record(CHAT, i, body(i), "A" if i == 0 else f"t{i}")
    await box.record(OTHER_CHAT, 9, body(9), "B")
    await box.record(OTHER_CHAT, 9, body(9), "B")  # a duplicate is not counted
    assert await box.depth([CHAT, OTHER_CHAT, "unknown"]) == 4
    assert await box.depth([OTHER_CHAT]) == 1
    peek = await box.next(CHAT, "A", window=2)
    assert peek is not None
    assert await box.done(CHAT, "A", peek.items)
    assert await box.depth([CHAT, OTHER_CHAT]) == 2
