"""A flooded chat: its backlog is combined into a few turns and never holds up another chat."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tests.fakes.yuanqi import Gate, Stream
from tests.harness import RunningBot

FLOODED, QUIET = 7001, 7002


async def waiting(redis: Redis, chat: int, count: int) -> None:
    """Until ``count`` updates (the running one included) are recorded in the chat's mailbox."""
    async with asyncio.timeout(10):
        while await redis.llen(f"yq:123456:{{c:{chat}}}:mail") < count:  # noqa: ASYNC110 - another task records
            await asyncio.sleep(0.01)


async def test_a_flooded_chat_does_not_hold_up_a_quiet_one(make_bot) -> None:  # type: ignore[no-untyped-def]
    """300 messages waiting in one chat cost a handful of agent calls; another chat is answered
    meanwhile, without waiting for them."""
    bot: RunningBot = await make_bot()
    gate = Gate()
    bot.yuanqi.script(Stream(["Busy ", gate, "answer."]))
    bot.say(FLOODED, "first")
    await bot.wait_text(FLOODED, "Busy")
    for i in range(300):
        bot.say(FLOODED, f"message {i}")
    bot.say(QUIET, "hello")
    await bot.wait_text(QUIET, "Echo: hello", timeout=5)
    gate.open()
    await bot.telegram.wait_for(lambda: any(
        m.text.endswith("message 299") for m in bot.telegram.bot_messages(FLOODED)), 30)
    asked = [r.last_user_text for r in bot.yuanqi.requests if r.last_user_text != "hello"]
    assert 2 <= len(asked) <= 1 + 300 // 50 + 1
    assert "\n\n".join(asked[1:]) == "\n\n".join(f"message {i}" for i in range(300))


async def test_messages_sent_during_an_answer_make_one_next_turn(make_bot, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    """Three messages sent while an answer streams are answered together, once, after it."""
    bot: RunningBot = await make_bot()
    gate = Gate()
    bot.yuanqi.script(Stream(["One ", gate, "moment."]))
    bot.say(FLOODED, "question")
    await bot.wait_text(FLOODED, "One")
    for text in ("also this", "and this", "and that"):
        bot.say(FLOODED, text)
    await waiting(redis, FLOODED, 4)
    gate.open()
    await bot.wait_text(FLOODED, "Echo: also this\n\nand this\n\nand that")
    assert [r.last_user_text for r in bot.yuanqi.requests] == ["question", "also this\n\nand this\n\nand that"]
    history = bot.yuanqi.requests[1].messages
    assert history[1]["content"][0]["text"] == "One moment."


async def test_what_does_not_fit_is_named_not_silently_dropped(make_bot, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    """Combined messages beyond MAX_INPUT_CHARS are left out, and the user is told how many."""
    bot: RunningBot = await make_bot(max_input_chars=25)
    gate = Gate()
    bot.yuanqi.script(Stream(["Wait ", gate, "done."]))
    bot.say(FLOODED, "q")
    await bot.wait_text(FLOODED, "Wait")
    for text in ("aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "dddddddddd"):
        bot.say(FLOODED, text)
    await waiting(redis, FLOODED, 5)
    gate.open()
    await bot.wait_text(FLOODED, "Echo: aaaaaaaaaa\n\nbbbbbbbbbb")
    notice = ("You sent several messages while I was answering. I read the first 2 together; the last 2 "
              "did not fit (25 characters at most), so please send those again.")
    await bot.wait_text(FLOODED, notice)
