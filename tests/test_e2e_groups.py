"""Groups and forum topics end to end: when the bot speaks, whose conversation it is, who may use it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.fakes.yuanqi import Gate, Stream
from tests.harness import RunningBot

GROUP = -100777
ANN, BOB = 11, 12
BOT = "@yuanqi_test_bot"


def texts_of(request_messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], "".join(p.get("text", "") for p in m["content"])) for m in request_messages]


def group_say(bot: RunningBot, text: str, *, user: int = ANN, name: str = "Ann", **kw: Any) -> dict[str, Any]:
    return bot.say(GROUP, text, user_id=user, first_name=name, chat_type="supergroup", **kw)


async def test_silent_unless_addressed(bot: RunningBot) -> None:
    """Ordinary group chatter gets no answer and no agent call."""
    group_say(bot, "hello everyone")
    group_say(bot, "did you see @someone_else?")
    mentioned = group_say(bot, f"{BOT} are you there?")
    answer = await bot.wait_text(GROUP, "Echo: Ann: are you there?")
    assert len(bot.yuanqi.requests) == 1
    assert answer.reply_to_message_id == mentioned["message_id"]


async def test_mention_is_case_insensitive_and_removed(bot: RunningBot) -> None:
    """@YUANQI_TEST_BOT counts as a mention and is not sent to the agent."""
    group_say(bot, "@YUANQI_TEST_BOT what is 2+2")
    await bot.wait_text(GROUP, "Echo: Ann: what is 2+2")


async def test_reply_to_the_bot_is_answered(bot: RunningBot) -> None:
    """Replying to one of the bot's messages addresses it without a mention."""
    group_say(bot, f"{BOT} first")
    first = await bot.wait_text(GROUP, "Echo: Ann: first")
    group_say(bot, "and a follow-up", reply_to_message_id=first.message_id)
    await bot.wait_text(GROUP, "Echo: Ann: and a follow-up")


async def test_quoted_message_is_given_as_context(bot: RunningBot) -> None:
    """Mentioning the bot in a reply to Bob's message sends Bob's message along."""
    bobs = group_say(bot, "The meeting moved to Friday.", user=BOB, name="Bob")
    group_say(bot, f"{BOT} summarise this", reply_to_message_id=bobs["message_id"])
    await bot.wait_requests(1)
    await bot.idle()
    assert bot.yuanqi.requests[0].last_user_text == (
        "Ann: [Bob wrote]\nThe meeting moved to Friday.\n\nsummarise this"
    )


async def test_commands_address_the_bot(bot: RunningBot) -> None:
    """/ask works without a mention; /reset@bot resets the group's conversation."""
    group_say(bot, "/ask what time is it")
    await bot.wait_text(GROUP, "Echo: Ann: what time is it")
    group_say(bot, f"/reset{BOT}")
    await bot.wait_text(GROUP, "Done: the conversation is cleared. The next message starts a new one.")
    group_say(bot, "/ask again")
    await bot.wait_text(GROUP, "Echo: Ann: again")
    assert texts_of(bot.yuanqi.requests[-1].messages) == [("user", "Ann: again")]


async def test_shared_conversation_names_each_speaker(bot: RunningBot) -> None:
    """By default the group shares one conversation and the agent can tell members apart."""
    group_say(bot, f"{BOT} I like tea")
    await bot.wait_text(GROUP, "Echo: Ann: I like tea")
    group_say(bot, f"{BOT} I prefer coffee", user=BOB, name="Bob")
    await bot.wait_text(GROUP, "Echo: Bob: I prefer coffee")
    assert texts_of(bot.yuanqi.requests[1].messages) == [
        ("user", "Ann: I like tea"), ("assistant", "Echo: Ann: I like tea"), ("user", "Bob: I prefer coffee"),
    ]
    ids = {r.body["user_id"] for r in bot.yuanqi.requests if r.body}
    assert len(ids) == 1


async def test_member_scope_keeps_members_apart(make_bot) -> None:  # type: ignore[no-untyped-def]
    """With GROUP_SESSION_SCOPE=member each member has a private conversation in the group."""
    bot: RunningBot = await make_bot(group_session_scope="member")
    group_say(bot, f"{BOT} I like tea")
    await bot.wait_text(GROUP, "Echo: I like tea")
    group_say(bot, f"{BOT} and me?", user=BOB, name="Bob")
    await bot.wait_text(GROUP, "Echo: and me?")
    assert texts_of(bot.yuanqi.requests[1].messages) == [("user", "and me?")]
    first, second = (r.body["user_id"] for r in bot.yuanqi.requests if r.body)
    assert first != second


async def test_forum_topics_are_separate_conversations(bot: RunningBot) -> None:
    """Each forum topic has its own history, and the answer lands in the same topic."""
    group_say(bot, f"{BOT} in topic one", message_thread_id=50, is_topic_message=True)
    answer = await bot.wait_text(GROUP, "Echo: Ann: in topic one")
    assert answer.message_thread_id == 50
    group_say(bot, f"{BOT} in topic two", message_thread_id=60, is_topic_message=True)
    answer = await bot.wait_text(GROUP, "Echo: Ann: in topic two")
    assert answer.message_thread_id == 60
    assert texts_of(bot.yuanqi.requests[1].messages) == [("user", "Ann: in topic two")]


async def test_reply_to_topic_start_is_not_a_reply_to_the_bot(bot: RunningBot) -> None:
    """In a topic the bot created, messages 'reply' to its creation message; that is not addressing."""
    bot.telegram.push_update({"message": {
        "message_id": 70, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "G", "is_forum": True},
        "from": bot.telegram.bot_user(), "message_thread_id": 70, "is_topic_message": True,
        "forum_topic_created": {"name": "Bot topic", "icon_color": 7322096},
    }})
    group_say(bot, "just chatting", message_thread_id=70, is_topic_message=True,
              extra={"reply_to_message": {"message_id": 70, "date": 0, "from": bot.telegram.bot_user(),
                                          "chat": {"id": GROUP, "type": "supergroup", "title": "G"},
                                          "message_thread_id": 70, "is_topic_message": True,
                                          "forum_topic_created": {"name": "Bot topic", "icon_color": 7322096}}})
    group_say(bot, f"{BOT} now I ask", message_thread_id=70, is_topic_message=True)
    await bot.wait_text(GROUP, "Echo: Ann: now I ask")
    assert len(bot.yuanqi.requests) == 1


async def test_migration_keeps_history_and_identity(bot: RunningBot) -> None:
    """A group upgraded to a supergroup continues the same conversation under the same user_id."""
    old, new = -4001, -1004001
    bot.say(old, f"{BOT} remember the code 1234", user_id=ANN, chat_type="group")
    await bot.wait_text(old, "Echo: Ann: remember the code 1234", final=True)
    bot.say(new, None, user_id=ANN, chat_type="supergroup", extra={"migrate_from_chat_id": old})
    bot.say(new, f"{BOT} what was the code?", user_id=ANN, chat_type="supergroup")
    await bot.wait_text(new, "Echo: Ann: what was the code?")
    before, after = bot.yuanqi.requests
    assert texts_of(after.messages)[0] == ("user", "Ann: remember the code 1234")
    assert before.body is not None and after.body is not None
    assert before.body["user_id"] == after.body["user_id"]


async def test_reset_can_be_limited_to_admins(make_bot) -> None:  # type: ignore[no-untyped-def]
    """With GROUP_RESET_ADMINS_ONLY, members are refused and admins may reset."""
    bot: RunningBot = await make_bot(group_reset_admins_only=True)
    bot.telegram.admins[GROUP] = {BOB}
    group_say(bot, "/reset")
    await bot.wait_text(GROUP, "Only the group's administrators can reset this conversation.")
    group_say(bot, "/reset", user=BOB, name="Bob")
    await bot.wait_text(GROUP, "Done: the conversation is cleared. The next message starts a new one.")


async def test_private_stranger_is_told_once(make_bot, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    """A user not on the allowlist hears why once, and the agent is never called."""
    bot: RunningBot = await make_bot(allowed_user_ids="42")
    bot.say(900, "hi")
    await bot.wait_text(900, "Sorry, this bot is private and you are not on its list of users.")
    bot.say(900, "hello?")
    bot.say(42, "I am allowed")
    await bot.wait_text(42, "Echo: I am allowed")
    assert len(bot.telegram.bot_messages(900)) == 1
    assert len(bot.yuanqi.requests) == 1


async def test_group_not_allowed_is_left(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Added to a group that is not allowed, the bot leaves; messages there are ignored."""
    bot: RunningBot = await make_bot(allowed_chat_ids=str(GROUP))
    stranger_group = -100999
    bot.telegram.push_update({"my_chat_member": {
        "chat": {"id": stranger_group, "type": "supergroup", "title": "Strangers"},
        "from": {"id": 777, "is_bot": False, "first_name": "Eve"}, "date": 0,
        "old_chat_member": {"status": "left", "user": bot.telegram.bot_user()},
        "new_chat_member": {"status": "member", "user": bot.telegram.bot_user()},
    }})
    await bot.telegram.wait_for(lambda: bool(bot.telegram.calls_of("leaveChat")))
    assert bot.telegram.calls_of("leaveChat")[0].params["chat_id"] == stranger_group
    bot.say(stranger_group, f"{BOT} hi", user_id=777, chat_type="supergroup")
    group_say(bot, f"{BOT} allowed here")
    await bot.wait_text(GROUP, "Echo: Ann: allowed here")
    assert bot.telegram.bot_messages(stranger_group) == []


async def test_bare_mention_gets_a_hint(bot: RunningBot) -> None:
    """Mentioning the bot with no question gets a hint instead of an agent call."""
    group_say(bot, BOT)
    await bot.wait_text(GROUP, "Yes? Write your question after mentioning me, or reply to my message.")
    assert bot.yuanqi.requests == []


async def test_waiting_chats_are_told_they_are_queued(make_bot) -> None:  # type: ignore[no-untyped-def]
    """When every agent slot is busy, a new question shows a queue notice that the answer replaces."""
    bot: RunningBot = await make_bot(yuanqi_max_concurrency=1)
    gate = Gate()
    bot.yuanqi.script(Stream(["busy", gate, " done"]))
    bot.say(1, "first")
    await bot.wait_text(1, "busy")
    bot.say(2, "second")
    notice = await bot.wait_text(2, "⏳ Many people are asking right now; you are next in the queue.")
    assert len(bot.yuanqi.requests) == 1
    gate.open()
    answer = await bot.wait_text(2, "Echo: second")
    assert answer.message_id == notice.message_id


# --- threads kept, sends never repeated blind ----------------------------------------------------


async def test_rate_limited_first_send_still_replies_in_the_topic(bot: RunningBot) -> None:
    """After a 429 on the answer's first send, the retry is still a reply to the question, in its topic."""
    bot.telegram.fail_next("sendMessage", error_code=429, description="Too Many Requests: retry after 1",
                           retry_after=1, chat_id=GROUP)
    asked = group_say(bot, f"{BOT} in the topic", message_thread_id=50, is_topic_message=True)
    answer = await bot.wait_text(GROUP, "Echo: Ann: in the topic", timeout=15)
    first, retry = bot.telegram.calls_of("sendMessage", GROUP)
    assert (first.status, retry.status) == (429, 200)
    assert (answer.reply_to_message_id, answer.message_thread_id) == (asked["message_id"], 50)


async def test_a_send_that_may_have_arrived_is_not_repeated(bot: RunningBot) -> None:
    """When the connection drops after Telegram carried out a send, the bot does not send it again."""
    bot.telegram.hang_up_next("sendMessage", chat_id=GROUP)
    group_say(bot, f"{BOT} first question")
    await bot.telegram.wait_for(lambda: len(bot.telegram.bot_messages(GROUP)) == 1)
    group_say(bot, f"{BOT} second question")  # answered only once the first turn is over
    await bot.wait_text(GROUP, "Echo: Ann: second question")
    first, second = bot.telegram.bot_messages(GROUP)
    assert (first.text[:4], second.text) == ("Echo", "Echo: Ann: second question")
    assert len(bot.telegram.calls_of("sendMessage", GROUP)) == 2


# --- identity follows migration ------------------------------------------------------------------

OLD_GROUP, NEW_GROUP = -4002, -1004002
BOT_ID = 123456


def migrate(bot: RunningBot, old: int, new: int) -> None:
    """What Telegram sends when a group becomes a supergroup: a service message in each chat."""
    bot.say(old, None, user_id=ANN, chat_type="group", extra={"migrate_to_chat_id": new})
    bot.say(new, None, user_id=ANN, chat_type="supergroup", extra={"migrate_from_chat_id": old})


async def test_migrated_allowlisted_group_keeps_working(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A group on ALLOWED_CHAT_IDS that became a supergroup is still allowed, with its history and user_id."""
    bot: RunningBot = await make_bot(allowed_chat_ids=str(OLD_GROUP))
    bot.say(OLD_GROUP, f"{BOT} remember the code 1234", user_id=ANN, chat_type="group")
    await bot.wait_text(OLD_GROUP, "Echo: Ann: remember the code 1234", final=True)
    migrate(bot, OLD_GROUP, NEW_GROUP)
    bot.telegram.push_update({"my_chat_member": {
        "chat": {"id": NEW_GROUP, "type": "supergroup", "title": "Upgraded"},
        "from": {"id": ANN, "is_bot": False, "first_name": "Ann"}, "date": 0,
        "old_chat_member": {"status": "left", "user": bot.telegram.bot_user()},
        "new_chat_member": {"status": "member", "user": bot.telegram.bot_user()},
    }})
    bot.say(NEW_GROUP, f"{BOT} what was the code?", user_id=ANN, chat_type="supergroup")
    await bot.wait_text(NEW_GROUP, "Echo: Ann: what was the code?")
    before, after = bot.yuanqi.requests
    assert texts_of(after.messages)[0] == ("user", "Ann: remember the code 1234")
    assert before.body is not None and after.body is not None
    assert before.body["user_id"] == after.body["user_id"]
    assert bot.telegram.calls_of("leaveChat") == []


async def wait_until(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)


async def test_migration_is_recorded_despite_a_redis_failure(
    bot: RunningBot, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis error while recording a migration is logged and retried; the history then continues."""
    bot.say(OLD_GROUP, f"{BOT} remember the code 1234", user_id=ANN, chat_type="group")
    await bot.wait_text(OLD_GROUP, "Echo: Ann: remember the code 1234")
    prefix = f"yq:{BOT_ID}:"
    # Redis refuses writes to alias keys only: every other key may still be written.
    await redis.execute_command("ACL", "SETUSER", "default", "resetkeys", "%R~*",
                                f"~{prefix}[^a]*", f"~{prefix}a[^l]*")
    try:
        migrate(bot, OLD_GROUP, NEW_GROUP)
        await wait_until(lambda: any("migration" in r.getMessage() and r.levelname == "WARNING"
                                     for r in caplog.records))
    finally:
        await redis.execute_command("ACL", "SETUSER", "default", "resetkeys", "~*")
    await wait_until(lambda: redis.exists(f"{prefix}alias:{NEW_GROUP}"))
    bot.say(NEW_GROUP, f"{BOT} what was the code?", user_id=ANN, chat_type="supergroup")
    await bot.wait_text(NEW_GROUP, "Echo: Ann: what was the code?")
    assert texts_of(bot.yuanqi.requests[-1].messages)[0] == ("user", "Ann: remember the code 1234")
    assert not any(r.levelname == "ERROR" for r in caplog.records)
    assert bot.telegram.bot_messages(NEW_GROUP)[0].text == "Echo: Ann: what was the code?"


# --- only messages get answers -------------------------------------------------------------------


async def test_service_messages_in_a_group_get_no_answer(bot: RunningBot) -> None:
    """Pins, title changes, joins, video chats, boosts and topic events are not questions, even as
    replies to the bot."""
    group_say(bot, f"{BOT} pin me")
    first = await bot.wait_text(GROUP, "Echo: Ann: pin me")
    pinned = {"message_id": first.message_id, "date": 1, "text": first.text,
              "chat": {"id": GROUP, "type": "supergroup", "title": "G"}, "from": bot.telegram.bot_user()}
    for event in ({"pinned_message": pinned}, {"new_chat_title": "Renamed"},
                  {"new_chat_members": [{"id": BOB, "is_bot": False, "first_name": "Bob"}]},
                  {"left_chat_member": {"id": BOB, "is_bot": False, "first_name": "Bob"}},
                  {"video_chat_started": {}}, {"boost_added": {"boost_count": 2}},
                  {"forum_topic_edited": {"name": "Renamed topic"}}):
        group_say(bot, None, extra={**event, "reply_to_message": {**pinned, "message_id": first.message_id}})
    group_say(bot, f"{BOT} still here?")
    await bot.wait_text(GROUP, "Echo: Ann: still here?")
    assert [m.text for m in bot.telegram.bot_messages(GROUP)] == ["Echo: Ann: pin me", "Echo: Ann: still here?"]
    assert len(bot.yuanqi.requests) == 2
