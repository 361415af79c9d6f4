"""Agent trouble end to end: replies nobody can see, silent and chatty streams, leaky error bodies."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.fakes.yuanqi import Gate, HangAfter, HttpError, Json, Raw, Stream, StreamError
from tests.harness import RunningBot

CHAT = 6001
OTHER = 6002
GROUP = -100888
BOT = "@yuanqi_test_bot"
MARKER = "UPSTREAM-MARKER-7f3a"
INTERRUPTED = "The answer was interrupted. Send your message again to retry."
REJECTED = "The agent service refused the request. Retrying won't help; please tell the bot's owner."
BROKEN = "The agent sent an answer I could not read. Please try again."
BUSY = "The agent is busy or unreachable right now. Please try again in a minute."

UNSEEN = [
    pytest.param("sendMessage", 403, "Forbidden: bot was blocked by the user", 1, id="blocked"),
    pytest.param("sendMessage", 400, "Bad Request: chat not found", 1, id="chat-gone"),
    pytest.param("sendMessage", 500, "Internal Server Error", 3, id="repeated-failures"),
]


def history_of(request_messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], "".join(p.get("text", "") for p in m["content"])) for m in request_messages]


def shown(bot: RunningBot, chat_id: int) -> str:
    """Every text the chat has ever shown from the bot, all versions of every message."""
    return "\n".join(v for m in bot.telegram.bot_messages(chat_id) for v in m.versions)


@pytest.mark.parametrize(("method", "code", "description", "times"), UNSEEN)
async def test_a_reply_nobody_can_see_closes_the_stream_and_frees_the_slot(
    make_bot, caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
    method: str, code: int, description: str, times: int,
) -> None:
    """When Telegram will not show the reply, the agent stream is closed at once and its only slot is freed."""
    bot: RunningBot = await make_bot(yuanqi_max_concurrency=1)
    gate = Gate()
    bot.yuanqi.script(Stream(["Hello", gate, " world"]))
    bot.telegram.fail_next(method, error_code=code, description=description, times=times, chat_id=CHAT)
    bot.say(CHAT, "question")
    await bot.yuanqi.wait_for(lambda: len(bot.yuanqi.requests) == 1 and bot.yuanqi.in_flight == 0, 3)
    assert not gate.is_open  # the agent would still be answering
    bot.say(OTHER, "anyone there?")
    await bot.wait_text(OTHER, "Echo: anyone there?", timeout=3)
    assert sum("no longer be shown" in r.getMessage() for r in caplog.records) == 1


async def test_a_finished_answer_nobody_saw_is_not_stored(bot: RunningBot) -> None:
    """An answer whose chat refused it is left out of the history, even when the agent finished it."""
    bot.yuanqi.script(Stream(["Hello world"]))
    bot.telegram.fail_next("sendMessage", error_code=403, description="Forbidden: bot was blocked by the user",
                           chat_id=CHAT)
    bot.say(CHAT, "question")
    await bot.wait_requests(1)
    await bot.idle()
    await asyncio.sleep(0.3)  # the turn's bookkeeping after the stream
    bot.say(CHAT, "again")
    await bot.wait_text(CHAT, "Echo: again")
    assert history_of(bot.yuanqi.requests[-1].messages) == [("user", "again")]


async def test_an_agent_silent_mid_answer_is_given_up(make_bot) -> None:  # type: ignore[no-untyped-def]
    """An agent that goes quiet after its first words is dropped after YUANQI_IDLE_TIMEOUT, the part kept."""
    bot: RunningBot = await make_bot(yuanqi_idle_timeout=0.3)
    bot.yuanqi.script(HangAfter(["Half an ans", "wer"]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    bot.say(CHAT, "question")
    await bot.wait_text(CHAT, f"Half an answer\n\n{INTERRUPTED}", timeout=4)
    assert loop.time() - started < 4  # the total timeout is 10 s
    await bot.idle()
    bot.say(CHAT, "again")
    await bot.wait_text(CHAT, "Echo: again")
    assert history_of(bot.yuanqi.requests[-1].messages) == [("user", "again")]


async def test_keepalives_and_odd_events_are_skipped(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Keep-alives, empty objects, pings, numbers and lists around the text change nothing the user sees."""
    bot: RunningBot = await make_bot(yuanqi_idle_timeout=0.5)
    odd = ['data: "keepalive"', "data: {}", "data: 42", "data: [1, 2]", 'data: {"type": "ping"}',
           "data: null", "data: keepalive", 'data: {"id": "x", "choices": "none"}']
    spaced = [Raw('data: "keepalive"', delay=0.2) for _ in range(4)]  # 0.8 s, never 0.5 s silent
    bot.yuanqi.script(Stream([Raw(e) for e in odd] + ["Hel", *spaced, *[Raw(e) for e in odd], "lo."]))
    bot.say(CHAT, "question")
    await bot.wait_text(CHAT, "Hello.")
    await bot.idle()
    bot.say(CHAT, "again")
    await bot.wait_text(CHAT, "Echo: again")
    assert history_of(bot.yuanqi.requests[-1].messages)[:2] == [("user", "question"), ("assistant", "Hello.")]


LEAKS = [
    pytest.param(HttpError(401, f'{{"error": {{"message": "{MARKER} bad appkey"}}}}'), REJECTED, id="401"),
    pytest.param(HttpError(400, f'{{"code": 4001, "msg": "{MARKER}"}}'), REJECTED, id="400"),
    pytest.param(HttpError(403, f"<html><h1>{MARKER}</h1></html>", content_type="text/html"), REJECTED,
                 id="403-html"),
    pytest.param(HttpError(500, f'{{"error": {{"message": "{MARKER}"}}}}'), BUSY, id="500"),
    pytest.param(HttpError(200, f'{{"error": {{"message": "{MARKER}"}}}}'), BROKEN, id="200-error-body"),
    pytest.param(StreamError(["Par", "tial"], error={"error": {"message": MARKER}}), f"Partial\n\n{INTERRUPTED}",
                 id="error-in-stream"),
]


@pytest.mark.parametrize("where", ["private", "group"])
@pytest.mark.parametrize(("behaviour", "notice"), LEAKS)
async def test_agent_error_bodies_reach_the_logs_but_never_the_chat(
    make_bot, caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
    behaviour: HttpError | Json | StreamError, notice: str, where: str,
) -> None:
    """Whatever the agent's error body says is logged; the chat only gets the catalogue's words."""
    caplog.set_level(logging.INFO)
    bot: RunningBot = await make_bot(yuanqi_max_retries=0)
    bot.yuanqi.script(behaviour)
    if where == "group":
        chat = GROUP
        bot.say(GROUP, f"{BOT} question", user_id=11, chat_type="supergroup")
    else:
        chat = CHAT
        bot.say(CHAT, "question")
    await bot.wait_text(chat, notice)
    await bot.idle()
    assert MARKER not in shown(bot, chat)
    assert any(MARKER in r.getMessage() for r in caplog.records)
