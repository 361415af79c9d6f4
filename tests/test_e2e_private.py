"""A private chat end to end: real PTB and httpx stacks, fake Telegram and Yuanqi, real Redis."""

from __future__ import annotations

import itertools
import logging

import pytest
from redis.asyncio import Redis

from bot.ops.logs import setup_logging
from tests.fakes.telegram import BOT_TOKEN, NOT_MODIFIED
from tests.fakes.yuanqi import (
    TOOL_OUTPUT,
    YUANQI_TOKEN,
    Disconnect,
    Gate,
    Hang,
    HttpError,
    Json,
    Stream,
)
from tests.harness import RunningBot

CHAT = 5001


def history_of(request_messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], "".join(p.get("text", "") for p in m["content"])) for m in request_messages]


async def test_answer_streams_into_one_message(bot: RunningBot) -> None:
    """The first delta becomes a message, later deltas edit it, the final text is complete."""
    gate = Gate()
    bot.yuanqi.script(Stream(["Hello", " there", gate, ", friend."]))
    bot.say(CHAT, "hi")
    first = await bot.wait_text(CHAT, "Hello there")
    gate.open()
    final = await bot.wait_text(CHAT, "Hello there, friend.")
    assert first.message_id == final.message_id
    assert len(bot.telegram.bot_messages(CHAT)) == 1
    assert final.versions[0] == "Hello there"


async def test_typing_is_shown_while_waiting(bot: RunningBot) -> None:
    """Before the first delta arrives the chat shows "typing"."""
    gate = Gate()
    bot.yuanqi.script(Stream([gate, "ok"]))
    bot.say(CHAT, "hi")
    await bot.telegram.wait_for(lambda: bool(bot.telegram.calls_of("sendChatAction", CHAT)))
    assert bot.telegram.calls_of("sendChatAction", CHAT)[0].params["action"] == "typing"
    assert bot.telegram.bot_messages(CHAT) == []
    gate.open()
    await bot.wait_text(CHAT, "ok")


async def test_edits_respect_the_interval(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Streaming operations in the chat are an edit interval apart (give or take the jitter of
    the requests themselves); only the final text may follow the last one sooner, so the chat
    never sees more than two operations within an interval."""
    bot: RunningBot = await make_bot(edit_interval_private=0.2)
    chunks = [f"w{i} " for i in range(60)]
    bot.yuanqi.script(Stream(chunks, chunk_delay=0.01))
    bot.say(CHAT, "go")
    await bot.wait_text(CHAT, "".join(chunks).strip(), final=True)
    ops = [c for c in bot.telegram.calls if c.method in ("sendMessage", "editMessageText")]
    streaming = [b.at - a.at for a, b in itertools.pairwise(ops[:-1])]
    assert len(ops) >= 3
    assert min(streaming) >= 0.2 - 0.02
    assert all(c.at - a.at >= 0.2 - 0.02 for a, c in zip(ops, ops[2:], strict=False))
    assert len(ops) < len(chunks) / 2  # coalesced, not one edit per delta


async def test_markdown_becomes_entities(bot: RunningBot) -> None:
    """The agent's Markdown is shown as Telegram entities, never via parse_mode."""
    bot.yuanqi.script(Stream(["Use **bold** and `code`."]))
    bot.say(CHAT, "format")
    message = await bot.wait_text(CHAT, "Use bold and code.")
    kinds = {(e["type"], e["offset"], e["length"]) for e in message.entities}
    assert kinds == {("bold", 4, 4), ("code", 13, 4)}
    assert all("parse_mode" not in c.params for c in bot.telegram.calls_of("sendMessage"))


async def test_long_answer_is_split_over_messages(bot: RunningBot) -> None:
    """An answer past 4096 UTF-16 units continues in further messages that hold all of it."""
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 12 for i in range(40)]
    text = "\n\n".join(paragraphs)
    bot.yuanqi.script(Stream([p + "\n\n" for p in paragraphs]))
    bot.say(CHAT, "long please")
    await bot.telegram.wait_for(
        lambda: "Paragraph 39" in "".join(m.text for m in bot.telegram.bot_messages(CHAT))
    )
    await bot.idle()
    parts = [m.text for m in bot.telegram.bot_messages(CHAT)]
    assert len(parts) >= 3
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert "\n\n".join(parts).split() == text.split()
    assert all(c.status == 200 for c in bot.telegram.calls if c.method != "getUpdates")


async def test_history_is_sent_with_the_next_question(bot: RunningBot) -> None:
    """A finished turn is remembered: the next request carries it before the new question."""
    bot.say(CHAT, "first question")
    await bot.wait_text(CHAT, "Echo: first question")
    bot.say(CHAT, "second question")
    await bot.wait_text(CHAT, "Echo: second question")
    assert history_of(bot.yuanqi.requests[1].messages) == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
    ]


async def test_history_survives_a_restart(bot: RunningBot) -> None:
    """History lives in Redis, so a restarted bot continues the conversation."""
    bot.say(CHAT, "remember me")
    await bot.wait_text(CHAT, "Echo: remember me")
    await bot.restart()
    bot.say(CHAT, "still there?")
    await bot.wait_text(CHAT, "Echo: still there?")
    first, second = bot.yuanqi.requests
    assert history_of(second.messages)[:2] == [("user", "remember me"), ("assistant", "Echo: remember me")]
    assert first.body is not None and second.body is not None
    assert first.body["user_id"] == second.body["user_id"]


async def test_user_id_is_stable_and_hides_the_chat_id(bot: RunningBot) -> None:
    """Each chat gets its own opaque user_id, the same on every turn."""
    bot.say(CHAT, "a")
    await bot.wait_text(CHAT, "Echo: a")
    bot.say(CHAT + 1, "b")
    await bot.wait_text(CHAT + 1, "Echo: b")
    bot.say(CHAT, "c")
    await bot.wait_text(CHAT, "Echo: c")
    ids = [r.body["user_id"] for r in bot.yuanqi.requests if r.body]
    assert ids[0] == ids[2] != ids[1]
    assert str(CHAT) not in ids[0]


async def test_reset_clears_the_history(bot: RunningBot) -> None:
    """/reset confirms and the next question goes without the earlier turns."""
    bot.say(CHAT, "before")
    await bot.wait_text(CHAT, "Echo: before")
    bot.say(CHAT, "/reset")
    await bot.wait_text(CHAT, "Done: the conversation is cleared. The next message starts a new one.")
    bot.say(CHAT, "after")
    await bot.wait_text(CHAT, "Echo: after")
    assert history_of(bot.yuanqi.requests[-1].messages) == [("user", "after")]


async def test_start_and_help_explain_the_bot(bot: RunningBot) -> None:
    """/start greets and /help lists the commands, without calling the agent."""
    bot.say(CHAT, "/start")
    bot.say(CHAT, "/help")
    messages = await bot.wait_messages(CHAT, 2)
    assert "Yuanqi" in messages[0].text
    assert "/reset" in messages[1].text
    assert bot.yuanqi.requests == []


async def test_chinese_users_are_answered_in_chinese(bot: RunningBot) -> None:
    """Bot messages follow the user's language_code."""
    bot.say(CHAT, "/reset", language_code="zh-hans")
    messages = await bot.wait_messages(CHAT, 1)
    assert messages[0].text == "已清空对话，下一条消息将开始新的对话。"


async def test_window_rolls_and_stays_alternating(make_bot) -> None:  # type: ignore[no-untyped-def]
    """With a small window, older turns roll off in pairs and every request is valid."""
    bot: RunningBot = await make_bot(history_max_messages=5)
    for i in range(5):
        bot.say(CHAT, f"q{i}")
        await bot.wait_text(CHAT, f"Echo: q{i}")
    last = history_of(bot.yuanqi.requests[-1].messages)
    assert last == [("user", "q2"), ("assistant", "Echo: q2"), ("user", "q3"), ("assistant", "Echo: q3"),
                    ("user", "q4")]
    assert all(r.problems in ([], ["x-source"]) and not r.problems for r in bot.yuanqi.requests)


async def test_quick_messages_are_answered_in_order(bot: RunningBot) -> None:
    """A second message sent during an answer waits, then is answered with the first in history."""
    gate = Gate()
    bot.yuanqi.script(Stream(["one", gate, " done"]))
    bot.say(CHAT, "first")
    bot.say(CHAT, "second")
    await bot.wait_text(CHAT, "one")
    assert len(bot.yuanqi.requests) == 1
    gate.open()
    await bot.wait_text(CHAT, "Echo: second")
    texts = [m.text for m in bot.telegram.bot_messages(CHAT)]
    assert texts == ["one done", "Echo: second"]
    assert history_of(bot.yuanqi.requests[1].messages)[:2] == [("user", "first"), ("assistant", "one done")]


async def test_chats_are_served_in_parallel(bot: RunningBot) -> None:
    """A slow answer in one chat does not hold up another chat."""
    gate = Gate()
    bot.yuanqi.script(Stream(["slow", gate, " answer"]))
    bot.say(CHAT, "slow one")
    await bot.wait_text(CHAT, "slow")
    bot.say(CHAT + 7, "quick one")
    await bot.wait_text(CHAT + 7, "Echo: quick one")
    assert bot.telegram.bot_messages(CHAT)[0].text == "slow"
    gate.open()
    await bot.wait_text(CHAT, "slow answer")


async def test_tool_steps_are_not_shown(bot: RunningBot) -> None:
    """Tool calls and tool output stay out of the answer."""
    bot.yuanqi.script(Stream(["It is sunny."], tool_call="weather"))
    bot.say(CHAT, "weather?")
    message = await bot.wait_text(CHAT, "It is sunny.")
    assert TOOL_OUTPUT not in "".join(message.versions)


async def test_non_stream_json_answer_is_shown(bot: RunningBot) -> None:
    """A server that ignores stream=true and answers JSON is still understood."""
    bot.yuanqi.script(Json("A whole answer."))
    bot.say(CHAT, "q")
    await bot.wait_text(CHAT, "A whole answer.")


ERRORS = [
    pytest.param(Stream(["nope"], finish_reason="sensitive"),
                 "The agent's content filter blocked this answer. Rephrasing the question may help.",
                 id="sensitive"),
    pytest.param(Stream([], finish_reason="tool_fail"),
                 "A tool the agent relies on failed. Please try again in a little while.", id="tool_fail"),
    pytest.param(HttpError(401, '{"error": {"message": "invalid appkey"}}'),
                 "The agent service refused the request. Retrying won't help; "
                 "please tell the bot's owner.", id="rejected"),
    pytest.param(Hang(),
                 "The agent took too long to answer. You can send your message again.", id="timeout"),
]


@pytest.mark.parametrize(("behaviour", "notice"), ERRORS)
async def test_agent_failures_are_explained_and_not_stored(
    make_bot, redis: Redis, behaviour: object, notice: str  # type: ignore[no-untyped-def]
) -> None:
    """Each failure gives one clear message, and the failed turn is not kept in history."""
    bot: RunningBot = await make_bot(yuanqi_first_byte_timeout=0.3, yuanqi_max_retries=0)
    bot.yuanqi.script(behaviour)  # type: ignore[arg-type]
    bot.say(CHAT, "question")
    await bot.wait_text(CHAT, notice)
    await bot.idle()
    bot.say(CHAT, "again")
    await bot.wait_text(CHAT, "Echo: again")
    assert history_of(bot.yuanqi.requests[-1].messages) == [("user", "again")]


async def test_server_errors_are_retried_before_anything_is_shown(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A 503 is retried and the user only sees the answer of the retry."""
    bot: RunningBot = await make_bot(yuanqi_max_retries=2)
    bot.yuanqi.script(HttpError(503, "busy", retry_after=0), Stream(["recovered"]))
    bot.say(CHAT, "q")
    await bot.wait_text(CHAT, "recovered")
    assert len(bot.yuanqi.requests) == 2
    assert [m.text for m in bot.telegram.bot_messages(CHAT)] == ["recovered"]


async def test_persistent_outage_says_busy(make_bot) -> None:  # type: ignore[no-untyped-def]
    """When every retry fails the user is told to try again later."""
    bot: RunningBot = await make_bot(yuanqi_max_retries=1)
    bot.yuanqi.script(HttpError(500, retry_after=0), HttpError(500, retry_after=0))
    bot.say(CHAT, "q")
    await bot.wait_text(CHAT, "The agent is busy or unreachable right now. Please try again in a minute.")
    assert len(bot.yuanqi.requests) == 2


async def test_interrupted_stream_keeps_the_partial_answer(bot: RunningBot) -> None:
    """A stream that breaks after text keeps what was shown and says it was interrupted."""
    bot.yuanqi.script(Disconnect(["Half an ans", "wer"]))
    bot.say(CHAT, "q")
    await bot.wait_text(
        CHAT, "Half an answer\n\nThe answer was interrupted. Send your message again to retry."
    )
    assert len(bot.yuanqi.requests) == 1


async def test_rate_limited_edit_waits_and_shows_the_final_text(bot: RunningBot) -> None:
    """A 429 on an edit pauses the chat for retry_after, then the newest text is shown."""
    gate = Gate()
    bot.yuanqi.script(Stream(["start", gate, " and the rest"]))
    bot.telegram.fail_next("editMessageText", error_code=429, description="Too Many Requests: retry after 1",
                           retry_after=1)
    bot.say(CHAT, "q")
    await bot.wait_text(CHAT, "start")
    gate.open()
    await bot.wait_text(CHAT, "start and the rest")
    edits = bot.telegram.calls_of("editMessageText", CHAT)
    assert [c.status for c in edits] == [429, 200]
    assert edits[1].at - edits[0].at >= 1.0
    assert bot.telegram.violations == 0


async def test_not_modified_counts_as_success(bot: RunningBot) -> None:
    """Telegram's "message is not modified" is not treated as a failure."""
    gate = Gate()
    bot.yuanqi.script(Stream(["a", gate, "b"]))
    bot.telegram.fail_next("editMessageText", error_code=400, description=NOT_MODIFIED)
    bot.say(CHAT, "q")
    await bot.wait_text(CHAT, "a")
    gate.open()
    await bot.telegram.wait_for(lambda: len(bot.telegram.calls_of("editMessageText")) == 1)
    await bot.idle()
    bot.say(CHAT, "next")
    await bot.wait_text(CHAT, "Echo: next")
    assert history_of(bot.yuanqi.requests[-1].messages)[:2] == [("user", "q"), ("assistant", "ab")]


async def test_overlong_input_is_refused_before_calling(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Text over the input limit gets a clear message and no agent call."""
    bot: RunningBot = await make_bot(max_input_chars=10)
    bot.say(CHAT, "x" * 11)
    messages = await bot.wait_messages(CHAT, 1)
    assert "too long" in messages[0].text
    assert bot.yuanqi.requests == []


async def test_unsupported_messages_get_a_reply(bot: RunningBot) -> None:
    """A sticker is answered with a short explanation instead of silence."""
    bot.say(CHAT, None, extra={"sticker": {"file_id": "s1", "file_unique_id": "u1", "type": "regular",
                                           "width": 512, "height": 512, "is_animated": False,
                                           "is_video": False}})
    messages = await bot.wait_messages(CHAT, 1)
    assert messages[0].text.startswith("I can't read this kind of message.")


async def test_no_secret_reaches_the_logs(make_bot, capfd: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """With the bot's own logging set-up at DEBUG, neither token appears in anything logged."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("DEBUG", [BOT_TOKEN, YUANQI_TOKEN])
    try:
        bot: RunningBot = await make_bot(yuanqi_max_retries=0)
        bot.say(CHAT, "hello")
        await bot.wait_text(CHAT, "Echo: hello")
        bot.yuanqi.script(HttpError(500, f"leaky {YUANQI_TOKEN}"))
        bot.say(CHAT, "again")
        await bot.wait_messages(CHAT, 2)
        await bot.stop()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name in ("httpx", "httpcore", "apscheduler"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    logged = capfd.readouterr().err
    assert "turn conv=" in logged
    assert "Calling Bot API endpoint" in logged  # DEBUG really was on
    assert BOT_TOKEN.split(":")[1] not in logged
    assert YUANQI_TOKEN not in logged


async def test_redis_outage_is_explained(make_bot, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """With Redis down, the user is told the bot's memory is unavailable, and it is logged."""
    from tests.fakes.redis_server import redis_server

    with redis_server() as url:  # the bot needs Redis to start; this one goes away once it runs
        bot: RunningBot = await make_bot(redis_url=url, user_id_secret="s3cret")
    bot.say(CHAT, "hello")
    await bot.wait_text(CHAT, "My memory store is unavailable, so I can't answer right now. Please try again later.")
    assert bot.yuanqi.requests == []
    assert any("Redis failed" in r.getMessage() for r in caplog.records)
