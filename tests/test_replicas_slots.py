"""Agent-call slots shared by real replicas (``python -m bot`` on one Redis) when one of them goes.

Two replicas, two slots: replica A streams answers (held at a gate) and has two chats queued for
a slot, ahead of two chats queued on replica B. Killed with ``kill -9``, A's slots and places in
the queue lapse within a chat lease and B's queued chats get the slots, in queue order; stopped
with SIGTERM, A gives them back before it exits. Either way the agent never sees more than two
calls at once, and every chat ends with exactly the messages it should.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio import Redis

from bot.cluster.turns import TurnRecord
from bot.texts import Text, say
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yuanqi import FakeYuanqi, Gate, Stream
from tests.replicas import SECRET, BotProcess, Launch, pid_of_holder, texts

BOT_ID = 123456
HOLDERS, QUEUE, ALIVE = (f"yq:{BOT_ID}:{{agent}}:{part}" for part in ("holders", "queue", "alive"))
HALF = "Half an"  # what is shown of a gated answer
CUT = f"{HALF}\n\n{say(Text.INTERRUPTED, 'en')}"


def only(telegram: FakeTelegram, chats: range | tuple[int, ...], text: Callable[[int], str]) -> Callable[[], bool]:
    """Each of the chats shows exactly one message from the bot: ``text(chat)``."""
    return lambda: all(texts(telegram, chat) == [text(chat)] for chat in chats)


def shown_first(chat: int) -> str:
    """Chats 1 and 2 stream until the gate; chat 3 is next in the queue, chat n has n-3 ahead."""
    if chat <= 2:
        return HALF
    return say(Text.QUEUED_AHEAD if chat > 3 else Text.QUEUED, "en", ahead=chat - 3)


def echo(chat: int) -> str:
    return f"Echo: q{chat}"


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    """Poll a condition on Redis (written by another process) until it holds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)


def recorded(redis: Redis, chat: int, *, text: bool) -> Callable[[], Awaitable[bool]]:
    """The chat's turn record names the message shown, and (``text``) some answer or (not) none:
    whoever finishes the turn after a crash knows what to mark or delete."""
    async def check() -> bool:
        raw = await redis.get(f"yq:{BOT_ID}:{{c:{chat}}}:turn")
        record = TurnRecord.loads(raw.decode() if isinstance(raw, bytes) else raw or "")
        return record is not None and bool(record.message_ids) and bool(record.text.strip()) == text
    return check


async def pids(redis: Redis, key: str) -> list[int | None]:
    """The replica (pid) of each member of a semaphore set, in the set's order."""
    members = cast(list[bytes], await redis.zrange(key, 0, -1))
    return [pid_of_holder(member) for member in members]


async def crowd(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis, *, b_streams: bool = False,
    **extra: str,
) -> tuple[BotProcess, BotProcess, Gate]:
    """Chats 1 and 2 hold both slots, streaming answers stopped at the gate returned (A streams
    chat 1, and chat 2 unless ``b_streams``); chats 3 and 4 queue on A, then 5 and 6 on B."""
    a, b = await launch(2, YUANQI_MAX_CONCURRENCY="2", **extra)
    yuanqi.max_concurrent = 2  # the fake answers a 3rd concurrent call with 429
    gate = Gate()
    yuanqi.script(Stream([f"{HALF} ", gate, "answer."]), Stream([f"{HALF} ", gate, "answer."]))
    plan = [(1, a), (2, b if b_streams else a), (3, a), (4, a), (5, b), (6, b)]
    receiver: BotProcess | None = None
    for chat, replica in plan:
        if replica is not receiver:  # the chat's update reaches this replica only
            await telegram.wait_for(lambda: telegram.webhook_pending() == 0, 5)
            telegram.deliver_webhooks([replica.webhook_url], SECRET, retry_delay=0.05)
            receiver = replica
        telegram.send_user_message(chat, f"q{chat}")
        await telegram.wait_for(only(telegram, (chat,), shown_first), 15)
        await until(recorded(redis, chat, text=chat <= 2), f"chat {chat}'s turn recorded")
    assert await pids(redis, QUEUE) == [a.pid, a.pid, b.pid, b.pid]
    assert Counter(await pids(redis, HOLDERS)) == Counter(r.pid for c, r in plan if c <= 2)
    assert len(yuanqi.requests) == 2
    return a, b, gate


async def finished(telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis, ends: dict[int, str]) -> None:
    """Chats 1 and 2 end as ``ends`` says, the queued chats with their answers; each question was
    asked once, never more than two at once, and nothing is left in the semaphore."""
    await telegram.wait_for(only(telegram, range(3, 7), echo), 15)
    await telegram.wait_for(only(telegram, (1, 2), ends.__getitem__), 15)
    assert yuanqi.rejected_concurrency == 0
    assert yuanqi.peak_concurrency <= 2
    await until(lambda: _empty(redis), "the semaphore emptied", timeout=5)
    await asyncio.sleep(0.5)  # room for a late duplicate to show
    assert only(telegram, range(3, 7), echo)() and only(telegram, (1, 2), ends.__getitem__)()
    assert sorted(r.last_user_text for r in yuanqi.requests) == [f"q{c}" for c in range(1, 7)]


async def _empty(redis: Redis) -> bool:
    return await redis.exists(HOLDERS, QUEUE, ALIVE) == 0


async def test_kill_9_of_the_replica_holding_every_slot_with_chats_queued(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis
) -> None:
    """kill -9 of the replica holding both slots, with chats queued ahead of the other replica's:
    its slots and places lapse within a chat lease (2 s), so the other replica's queued chats are
    answered within seconds and first; the dead replica's streamed answers are marked interrupted
    and its queued chats answered, each once, with never a 3rd call at once."""
    a, _, _ = await crowd(launch, telegram, yuanqi, redis)
    a.kill()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await telegram.wait_for(only(telegram, (5, 6), echo), 15)
    waited = loop.time() - began
    assert waited < 8, f"B's queued chats waited {waited:.1f} s for the dead replica's claims"
    assert yuanqi.requests[2].last_user_text in {"q5", "q6"}  # ahead of A's chats, asked again
    await finished(telegram, yuanqi, redis, {1: CUT, 2: CUT})


async def test_kill_9_frees_the_dead_replicas_slot_while_the_other_one_holds_its_own(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis
) -> None:
    """kill -9 of a replica holding one slot while the other replica holds the second (and keeps
    the holders alive in Redis): the dead slot comes back once its lease lapses, and the queued
    chats take it one at a time, in queue order, while the live answer keeps streaming."""
    a, _, gate = await crowd(launch, telegram, yuanqi, redis, b_streams=True)
    a.kill()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await telegram.wait_for(only(telegram, (5, 6), echo), 15)
    waited = loop.time() - began
    assert waited < 8, f"B's queued chats waited {waited:.1f} s for the dead replica's slot"
    assert texts(telegram, 2) == [HALF]  # B's own slot was never given up
    assert [r.last_user_text for r in yuanqi.requests[2:4]] == ["q5", "q6"]
    gate.open()
    await finished(telegram, yuanqi, redis, {1: CUT, 2: f"{HALF} answer."})


async def test_sigterm_gives_back_the_slots_and_places_before_exiting(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis
) -> None:
    """SIGTERM of the replica holding both slots, with chats queued: after its grace period it
    marks its cut answers, gives back its slots and its waiters' places and exits 0, so the other
    replica's queued chats are answered at once, not after a lease (10 s here) lapses."""
    a, _, _ = await crowd(launch, telegram, yuanqi, redis, CHAT_LEASE_SECONDS="10", SHUTDOWN_GRACE_SECONDS="1")
    assert await a.terminate() == 0
    loop = asyncio.get_running_loop()
    began = loop.time()
    left = {key: await pids(redis, key) for key in (HOLDERS, QUEUE, ALIVE)}
    assert not any(a.pid in members for members in left.values()), left
    assert texts(telegram, 1) == texts(telegram, 2) == [CUT]
    await telegram.wait_for(only(telegram, (5, 6), echo), 15)
    waited = loop.time() - began
    assert waited < 3, f"B's queued chats waited {waited:.1f} s after the replica stopped"
    await finished(telegram, yuanqi, redis, {1: CUT, 2: CUT})
