"""Usage and quotas end to end: /usage, a daily token limit and a message rate, both refused politely."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import _free_port
from tests.fakes.yuanqi import Stream
from tests.harness import RunningBot

CHAT = 5001
USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}


async def test_usage_shows_tokens_today_and_in_total(make_bot) -> None:  # type: ignore[no-untyped-def]
    """/usage reports the user's tokens without calling the agent."""
    bot: RunningBot = await make_bot()
    bot.yuanqi.script(Stream(["Hi there"], usage=USAGE))
    bot.say(CHAT, "hello")
    await bot.wait_text(CHAT, "Hi there")
    bot.say(CHAT, "/usage")
    await bot.wait_text(CHAT, "Tokens used today (UTC): 12. In total: 12.")
    assert len(bot.yuanqi.requests) == 1


async def test_daily_token_limit_refuses_without_calling_the_agent(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Once the day's tokens reach the limit, the next question is refused with the reset time."""
    bot: RunningBot = await make_bot(daily_token_limit_per_user=10)
    bot.yuanqi.script(Stream(["Hi there"], usage=USAGE))
    bot.say(CHAT, "hello")
    await bot.wait_text(CHAT, "Hi there")
    bot.say(CHAT, "again", language_code="zh-hans")
    await bot.telegram.wait_for(lambda: len(bot.telegram.bot_messages(CHAT)) == 2)
    refusal = bot.telegram.bot_messages(CHAT)[-1].text
    assert refusal.startswith("你今天的 10 个 token 额度已用完，将在 UTC 零点（")
    assert len(bot.yuanqi.requests) == 1
    bot.say(CHAT, "/usage")
    await bot.wait_text(CHAT, "Tokens used today (UTC): 12 of your 10. In total: 12.")


async def test_message_rate_limit_refuses_the_extra_message(make_bot) -> None:  # type: ignore[no-untyped-def]
    """The third message within a minute, with a limit of two, is refused and says when to retry."""
    bot: RunningBot = await make_bot(messages_per_minute_per_user=2)
    for count, text in enumerate(("one", "two", "three"), start=1):
        bot.say(CHAT, text)  # one at a time: messages sent during an answer make one turn
        await bot.telegram.wait_for(lambda n=count: len(bot.telegram.bot_messages(CHAT)) == n)
    texts = [m.text for m in bot.telegram.bot_messages(CHAT)]
    assert texts[:2] == ["Echo: one", "Echo: two"]
    assert texts[2].startswith("Please slow down: at most 2 messages a minute. Try again in ")
    assert [r.last_user_text for r in bot.yuanqi.requests] == ["one", "two"]


async def test_metrics_count_turns_tokens_and_telegram_calls(make_bot) -> None:  # type: ignore[no-untyped-def]
    """/metrics (on HEALTH_LISTEN in polling mode) counts the turn, its tokens and the Bot API calls."""
    port = _free_port()
    bot: RunningBot = await make_bot(health_listen=f"127.0.0.1:{port}")
    bot.yuanqi.script(Stream(["Hi there"], usage=USAGE))
    bot.say(CHAT, "hello")
    await bot.wait_text(CHAT, "Hi there")
    turn = 'yuanqi_bot_turns_total{outcome="stop"} 1.0'
    async with httpx.AsyncClient(trust_env=False) as http, asyncio.timeout(5):
        ready = await http.get(f"http://127.0.0.1:{port}/readyz")
        text = ""
        while turn not in text:  # counted just after the final text is shown
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert ready.status_code == 200
    assert "yuanqi_bot_tokens_total 12.0" in text
    assert 'yuanqi_bot_telegram_calls_total{method="sendMessage"}' in text
    assert 'yuanqi_bot_updates_received_total{source="polling"} 1.0' in text
    assert "123456:" not in text  # no token in a method label
