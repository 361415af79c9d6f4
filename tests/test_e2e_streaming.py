"""Issue 9 end to end: native drafts, stopping an answer, tool progress, /retry, the command menu.

Real PTB and httpx stacks against the fake Telegram and Yuanqi servers and a real Redis.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.texts import Text, say
from tests.fakes.telegram import SentMessage
from tests.fakes.yuanqi import Gate, HangAfter, Stream, ToolCall
from tests.harness import RunningBot

MakeBot = Callable[..., Awaitable[RunningBot]]
CHAT = 5001
GROUP = -100777
ANN, BOB, ADMIN = 42, 43, 44
BOT = "@yuanqi_test_bot"


def history_of(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], "".join(p.get("text", "") for p in m["content"])) for m in messages]


async def drafting(make_bot: MakeBot, **overrides: Any) -> RunningBot:
    return await make_bot(stream_mode="auto", draft_interval=0.05, **overrides)


# --- drafts ----------------------------------------------------------------------------------


async def test_a_private_answer_streams_as_a_draft_and_ends_as_a_message(make_bot: MakeBot) -> None:
    """In a private chat the answer grows in a native draft with Telegram's stop button, no
    message is edited, and the final answer is one real message with its formatting."""
    bot = await drafting(make_bot)
    gate = Gate()
    bot.yuanqi.script(Stream(["**Hello**", " there", gate, ", friend."]))
    bot.say(CHAT, "hi")
    await bot.telegram.wait_for(lambda: any(
        d.text == "Hello there" for d in bot.telegram.drafts.get(CHAT, [])))
    assert bot.telegram.bot_messages(CHAT) == []
    gate.open()
    final = await bot.wait_text(CHAT, "Hello there, friend.")
    drafts = bot.telegram.drafts[CHAT]
    assert all(d.can_stop for d in drafts)
    assert len({d.draft_id for d in drafts}) == 1  # one draft, animated as it grows
    assert drafts[0].entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert final.entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert bot.telegram.calls_of("editMessageText", CHAT) == []
    assert len(bot.telegram.bot_messages(CHAT)) == 1


async def test_drafts_that_fail_fall_back_to_edits_without_losing_text(make_bot: MakeBot) -> None:
    """An older Bot API server (404 for sendMessageDraft) or a 400: the answer is shown by edits
    instead, complete, and the chat is shown by edits from then on."""
    bot = await drafting(make_bot)
    bot.telegram.drafts_supported = False
    gate = Gate()
    bot.yuanqi.script(Stream(["Hello", gate, " there."]), Stream(["Second answer."]))
    bot.say(CHAT, "hi")
    await bot.telegram.wait_for(lambda: any(m.text == "Hello" for m in bot.telegram.bot_messages(CHAT)))
    gate.open()
    await bot.wait_text(CHAT, "Hello there.")
    bot.say(CHAT, "again")
    await bot.wait_text(CHAT, "Second answer.")
    assert len(bot.telegram.calls_of("sendMessageDraft", CHAT)) == 1  # tried once, then edits


async def test_a_400_on_a_draft_falls_back_to_edits(make_bot: MakeBot) -> None:
    bot = await drafting(make_bot)
    bot.telegram.fail_next("sendMessageDraft", error_code=400, description="Bad Request: TEXTDRAFT_PEER_INVALID")
    bot.yuanqi.script(Stream(["Hello", " there."], chunk_delay=0.1))
    bot.say(CHAT, "hi")
    await bot.wait_text(CHAT, "Hello there.")
    assert len(bot.telegram.bot_messages(CHAT)) == 1


async def test_a_draft_is_kept_alive_while_a_tool_runs(make_bot: MakeBot) -> None:
    """Telegram drops a draft after ~30 s; while the agent is silent the same draft is sent again
    every DRAFT_KEEPALIVE seconds (here shortened), so the text never vanishes."""
    bot = await drafting(make_bot, draft_keepalive=0.3)
    gate = Gate()
    bot.yuanqi.script(Stream(["Let me check.", gate, " Done."]))
    bot.say(CHAT, "hi")
    await bot.telegram.wait_for(lambda: sum(
        d.text == "Let me check." for d in bot.telegram.drafts.get(CHAT, [])) >= 3)
    gate.open()
    await bot.wait_text(CHAT, "Let me check. Done.")


# --- stopping --------------------------------------------------------------------------------


async def wait_closed(bot: RunningBot, index: int = 0) -> float:
    """Seconds from now until the fake agent saw its stream closed by the bot."""
    loop_time = time.monotonic()  # the fake agent's clock
    await bot.yuanqi.wait_for(lambda: bot.yuanqi.requests[index].closed_at is not None, timeout=3)
    closed = bot.yuanqi.requests[index].closed_at
    assert closed is not None
    return closed - loop_time


async def test_telegrams_stop_button_on_a_draft_closes_the_stream_and_keeps_the_text(
    make_bot: MakeBot,
) -> None:
    """The user presses stop on the draft: the agent's stream is closed within a second, the
    partial answer stays as a real message marked as stopped, and history keeps it."""
    bot = await drafting(make_bot)
    bot.yuanqi.script(HangAfter(["The first half"]), Stream(["ok"]))
    bot.say(CHAT, "write a lot")
    await bot.telegram.wait_for(lambda: any(
        d.text == "The first half" for d in bot.telegram.drafts.get(CHAT, [])))
    bot.telegram.stop_generation(CHAT, bot.telegram.drafts[CHAT][-1].draft_id + 1)  # not this one
    bot.telegram.stop_generation(CHAT, bot.telegram.drafts[CHAT][-1].draft_id)
    assert await wait_closed(bot) < 1.0
    stopped = say(Text.STOPPED, None)
    await bot.wait_text(CHAT, f"The first half\n\n{stopped}")
    bot.say(CHAT, "next")
    await bot.wait_text(CHAT, "ok")
    assert history_of(bot.yuanqi.requests[1].messages) == [
        ("user", "write a lot"), ("assistant", "The first half"), ("user", "next")]


async def test_stop_in_a_private_chat_by_command(make_bot: MakeBot) -> None:
    """/stop works in edit mode too; with nothing running it says so."""
    bot = await make_bot()
    bot.say(CHAT, "/stop")
    await bot.wait_text(CHAT, say(Text.STOP_NOTHING, None))
    bot.yuanqi.script(HangAfter(["Partial"]))
    bot.say(CHAT, "go")
    await bot.telegram.wait_for(lambda: any(m.text == "Partial" for m in bot.telegram.bot_messages(CHAT)))
    bot.say(CHAT, "/stop")
    assert await wait_closed(bot) < 1.0
    await bot.wait_text(CHAT, f"Partial\n\n{say(Text.STOPPED, None)}")
    assert len(bot.yuanqi.requests) == 1


def streaming_message(bot: RunningBot, chat: int, text: str) -> SentMessage | None:
    return next((m for m in bot.telegram.bot_messages(chat) if m.text == text and m.buttons), None)


async def test_the_stop_button_in_a_group_is_for_the_asker_or_an_admin(make_bot: MakeBot) -> None:
    """In a group the answer streams by edits with a ⏹ Stop button. Someone else pressing it is
    told no (and nothing stops); an admin may; the button is gone from the final message."""
    bot = await make_bot()
    bot.telegram.admins[GROUP] = {ADMIN}
    bot.yuanqi.script(HangAfter(["Group answer so far"]))
    bot.say(GROUP, f"{BOT} explain", user_id=ANN, chat_type="supergroup")
    await bot.telegram.wait_for(lambda: streaming_message(bot, GROUP, "Group answer so far") is not None)
    message = streaming_message(bot, GROUP, "Group answer so far")
    assert message is not None and len(message.buttons) == 1 and message.buttons[0].startswith("stop:")
    data = message.buttons[0]
    bot.telegram.press_button(GROUP, message.message_id, data, user_id=BOB, first_name="Bob")
    await bot.telegram.wait_for(lambda: len(bot.telegram.callback_answers) == 1)
    assert bot.telegram.callback_answers[0]["text"] == say(Text.STOP_NOT_YOURS, None)
    assert bot.telegram.callback_answers[0]["show_alert"] is True
    assert bot.yuanqi.requests[0].closed_at is None
    bot.telegram.press_button(GROUP, message.message_id, data, user_id=ADMIN, first_name="Ada")
    assert await wait_closed(bot) < 1.0
    await bot.wait_text(GROUP, f"Group answer so far\n\n{say(Text.STOPPED, None)}")
    assert bot.telegram.callback_answers[1]["text"] == say(Text.STOP_OK, None)


async def test_the_asker_stops_their_own_group_answer(make_bot: MakeBot) -> None:
    bot = await make_bot()
    bot.yuanqi.script(HangAfter(["Mine"]))
    bot.say(GROUP, f"{BOT} explain", user_id=ANN, chat_type="supergroup")
    await bot.telegram.wait_for(lambda: streaming_message(bot, GROUP, "Mine") is not None)
    message = streaming_message(bot, GROUP, "Mine")
    assert message is not None
    bot.telegram.press_button(GROUP, message.message_id, message.buttons[0], user_id=ANN)
    assert await wait_closed(bot) < 1.0
    final = await bot.wait_text(GROUP, f"Mine\n\n{say(Text.STOPPED, None)}")
    assert final.buttons == []


async def test_a_stale_stop_button_stops_nothing(make_bot: MakeBot) -> None:
    """A button press on an answer that has finished (a late tap) is answered, stops nothing."""
    bot = await make_bot()
    gate = Gate()
    bot.yuanqi.script(Stream(["Done soon", gate, "."]), HangAfter(["Next answer"]))
    bot.say(GROUP, f"{BOT} one", user_id=ANN, chat_type="supergroup")
    await bot.telegram.wait_for(lambda: streaming_message(bot, GROUP, "Done soon") is not None)
    message = streaming_message(bot, GROUP, "Done soon")
    assert message is not None
    gate.open()
    await bot.wait_text(GROUP, "Done soon.")
    bot.say(GROUP, f"{BOT} two", user_id=ANN, chat_type="supergroup")
    await bot.telegram.wait_for(lambda: streaming_message(bot, GROUP, "Next answer") is not None)
    stale = next(markup for markup in message.markups if markup)
    message.markups.append(stale)  # a client that still shows the old button
    bot.telegram.press_button(GROUP, message.message_id, message.buttons[0], user_id=ANN)
    await bot.telegram.wait_for(lambda: len(bot.telegram.callback_answers) == 1)
    assert bot.telegram.callback_answers[0]["text"] == say(Text.STOP_NOTHING, None)
    assert bot.yuanqi.requests[1].closed_at is None


# --- group cadence ---------------------------------------------------------------------------


async def test_a_short_group_answer_is_sent_once_when_final(make_bot: MakeBot) -> None:
    """In a group an answer under GROUP_HOLD_CHARS is one message, never edited."""
    bot = await make_bot(group_hold_chars=300)
    bot.yuanqi.script(Stream(["A short", " group", " answer."], chunk_delay=0.15))
    bot.say(GROUP, f"{BOT} quick one", user_id=ANN, chat_type="supergroup")
    final = await bot.wait_text(GROUP, "A short group answer.")
    assert final.versions == ["A short group answer."]
    assert bot.telegram.calls_of("editMessageText", GROUP) == []


# --- tool progress ---------------------------------------------------------------------------


async def test_tool_steps_show_as_a_status_line_until_the_answer_replaces_it(make_bot: MakeBot) -> None:
    """Each tool step shows as a line in the user's language; text written before a tool stays."""
    bot = await make_bot()
    gates = [Gate(), Gate(), Gate()]
    bot.yuanqi.script(Stream([
        "Let me look.", gates[0], ToolCall("faq", kind="knowledge"), gates[1],
        ToolCall("weather", fail=True), gates[2], " It is sunny.",
    ]))
    bot.say(CHAT, "weather?", language_code="zh-hk")
    knowledge = say(Text.TOOL_KNOWLEDGE, "zh-hk")
    failed = say(Text.TOOL_FAILED, "zh-hk", name="weather")
    await bot.telegram.wait_for(lambda: any(m.text == "Let me look." for m in bot.telegram.bot_messages(CHAT)))
    gates[0].open()
    await bot.telegram.wait_for(lambda: any(
        m.text == f"Let me look.\n\n{knowledge}" for m in bot.telegram.bot_messages(CHAT)))
    gates[1].open()
    await bot.telegram.wait_for(lambda: any(
        m.text == f"Let me look.\n\n{failed}" for m in bot.telegram.bot_messages(CHAT)))
    gates[2].open()
    await bot.wait_text(CHAT, "Let me look. It is sunny.")
    assert "🔎" in knowledge and "weather" in failed


async def test_tool_status_goes_into_the_draft(make_bot: MakeBot) -> None:
    """In draft mode the status line is part of the draft: no message is sent while it shows."""
    bot = await drafting(make_bot)
    gate = Gate()
    bot.yuanqi.script(Stream([ToolCall("orders", kind="workflow"), gate, "Your order shipped."]))
    bot.say(CHAT, "where is my order?")
    line = say(Text.TOOL_WORKFLOW, None, name="orders")
    await bot.telegram.wait_for(lambda: any(d.text == line for d in bot.telegram.drafts.get(CHAT, [])))
    assert bot.telegram.bot_messages(CHAT) == []
    gate.open()
    await bot.wait_text(CHAT, "Your order shipped.")


# --- /retry, /new, the command menu ----------------------------------------------------------


async def test_retry_regenerates_the_last_answer_in_place(make_bot: MakeBot) -> None:
    """/retry asks the last question again without its old answer; history keeps only the new one."""
    bot = await make_bot()
    bot.yuanqi.script(Stream(["First answer."]), Stream(["Second answer."]), Stream(["Third."]))
    bot.say(CHAT, "tell me a joke")
    await bot.wait_text(CHAT, "First answer.")
    bot.say(CHAT, "/retry")
    await bot.wait_text(CHAT, "Second answer.")
    assert history_of(bot.yuanqi.requests[1].messages) == [("user", "tell me a joke")]
    bot.say(CHAT, "another")
    await bot.wait_text(CHAT, "Third.")
    assert history_of(bot.yuanqi.requests[2].messages) == [
        ("user", "tell me a joke"), ("assistant", "Second answer."), ("user", "another")]


async def test_retry_with_nothing_to_retry_and_new_as_reset(make_bot: MakeBot) -> None:
    bot = await make_bot()
    bot.say(CHAT, "/retry")
    await bot.wait_text(CHAT, say(Text.RETRY_NOTHING, None))
    bot.yuanqi.script(Stream(["Remembered."]), Stream(["Fresh."]))
    bot.say(CHAT, "remember 7")
    await bot.wait_text(CHAT, "Remembered.")
    bot.say(CHAT, "/new")
    await bot.wait_text(CHAT, say(Text.RESET, None))
    bot.say(CHAT, "what number?")
    await bot.wait_text(CHAT, "Fresh.")
    assert history_of(bot.yuanqi.requests[1].messages) == [("user", "what number?")]


async def test_the_command_menu_is_registered_per_language(make_bot: MakeBot) -> None:
    """At start the commands are registered for every user, English and Chinese readers."""
    bot = await make_bot(default_language="zh-Hant")
    calls = bot.telegram.calls_of("setMyCommands")
    by_language = {c.params.get("language_code"): c.params["commands"] for c in calls}
    assert set(by_language) == {None, "en", "zh"}
    names = [c["command"] for c in by_language["en"]]
    assert names == ["start", "help", "ask", "new", "reset", "retry", "stop", "usage"]
    assert by_language["en"][0]["description"] == say(Text.CMD_START, "en")
    assert by_language["zh"][0]["description"] == say(Text.CMD_START, "zh-hant")
    assert by_language[None][0]["description"] == say(Text.CMD_START, "zh-hant")
