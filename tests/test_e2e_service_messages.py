"""Service messages (pins, joins, title changes, topic and video chat events, boosts) get no answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import RunningBot

CHAT = 5002
ANN = {"id": CHAT, "is_bot": False, "first_name": "Ann"}
PINNED = {"message_id": 1, "date": 1,  # date 0 would mean "inaccessible"
          "chat": {"id": CHAT, "type": "private", "first_name": "Ann"},
          "text": "an old message"}

SERVICE_EVENTS: list[Any] = [
    pytest.param({"pinned_message": PINNED}, id="pinned_message"),
    # A pin of a message the bot cannot see: PTB turns it into an object that does not survive
    # a round trip back to JSON; the update is kept as Telegram sent it.
    pytest.param({"pinned_message": {**PINNED, "date": 0}}, id="pinned_inaccessible"),
    pytest.param({"message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
                 id="auto_delete_timer"),
    pytest.param({"new_chat_title": "Renamed"}, id="new_chat_title"),
    pytest.param({"new_chat_members": [ANN]}, id="new_chat_members"),
    pytest.param({"left_chat_member": ANN}, id="left_chat_member"),
    pytest.param({"forum_topic_created": {"name": "Ideas", "icon_color": 7322096}}, id="forum_topic_created"),
    pytest.param({"video_chat_started": {}}, id="video_chat_started"),
    pytest.param({"video_chat_ended": {"duration": 60}}, id="video_chat_ended"),
    pytest.param({"boost_added": {"boost_count": 1}}, id="boost_added"),
    pytest.param({"write_access_allowed": {}}, id="write_access_allowed"),
]


@pytest.mark.parametrize("event", SERVICE_EVENTS)
async def test_service_message_in_a_private_chat_gets_no_answer(bot: RunningBot, event: dict[str, Any]) -> None:
    """A service message is not a question: no "can't read" notice and no agent call, in private chats too."""
    bot.say(CHAT, None, extra=event)
    bot.say(CHAT, "hello")
    await bot.wait_text(CHAT, "Echo: hello")
    assert [m.text for m in bot.telegram.bot_messages(CHAT)] == ["Echo: hello"]
    assert len(bot.yuanqi.requests) == 1
