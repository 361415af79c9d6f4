"""Routing: which mailbox an update goes to, and which mailbox items form one album turn."""

from __future__ import annotations

from typing import Any

import pytest

from bot.cluster import routing


def message(chat: int = 5, **extra: Any) -> dict[str, Any]:
    return {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}, **extra}


@pytest.mark.parametrize(("update", "route"), [
    ({"update_id": 1, "message": message(42)}, "42"),
    ({"update_id": 1, "edited_message": message(-100)}, "-100"),
    ({"update_id": 1, "callback_query": {"id": "q", "message": message(7)}}, "7"),
    ({"update_id": 1, "my_chat_member": {"chat": {"id": -5, "type": "group"}}}, "-5"),
    ({"update_id": 1, "stopped_message_generation": {"chat": {"id": 9}, "draft_id": 1}}, "9"),
    ({"update_id": 1, "inline_query": {"id": "x"}}, routing.NO_CHAT),
    ({"update_id": 1, "message": {"chat": {"id": "not a number"}}}, routing.NO_CHAT),
    ({"update_id": 1, "message": "garbage"}, routing.NO_CHAT),
], ids=["message", "edited", "callback", "membership", "stop", "no chat", "bad id", "bad message"])
def test_route_is_the_chat(update: dict[str, Any], route: str) -> None:
    """Every update of a chat goes to that chat's mailbox; anything else to a shared one."""
    assert routing.route_of(update) == route


@pytest.mark.parametrize(("update", "expected"), [
    ({"update_id": 7}, 7), ({"update_id": 0}, 0), ({"update_id": -1}, None),
    ({"update_id": "7"}, None), ({"update_id": True}, None), ({}, None),
], ids=["int", "zero", "negative", "string", "bool", "missing"])
def test_update_id_must_be_a_natural_number(update: dict[str, Any], expected: int | None) -> None:
    """Only a real update_id is accepted (it is the dedupe key)."""
    assert routing.update_id_of(update) == expected


def test_album_collects_parts_of_the_first_items_group() -> None:
    """Parts sharing the head's media_group_id join it, even with other messages between."""
    updates = [
        {"message": message(media_group_id="A")}, {"message": message()},
        {"message": message(media_group_id="B")}, {"message": message(media_group_id="A")},
    ]
    assert routing.album(updates) == [0, 3]


def test_plain_message_is_its_own_turn() -> None:
    """Without a media group, only the head is taken."""
    assert routing.album([{"message": message()}, {"message": message()}]) == [0]


def test_album_holds_at_most_ten_parts() -> None:
    """Telegram albums have at most ten items; more with the same id start another turn."""
    updates = [{"message": message(media_group_id="A")} for _ in range(12)]
    assert routing.album(updates) == list(range(10))


@pytest.mark.parametrize(("arrivals", "now", "left"), [
    ([1000], 1000, 1000), ([1000, 1500], 2000, 500), ([1000, 1500], 2600, 0), ([0] * 10, 0, 0),
], ids=["just arrived", "part came later", "quiet long enough", "full album"])
def test_album_settles_after_a_quiet_wait(arrivals: list[int], now: int, left: int) -> None:
    """An album is complete once no part arrived for the wait, or when it has ten parts."""
    assert routing.album_settled(arrivals, now, 1000) == left


def plain(text: str, sender: int = 1, thread: int | None = None, **extra: Any) -> dict[str, Any]:
    msg = message(text=text, **{"from": {"id": sender, "is_bot": False, "first_name": "A"}}, **extra)
    if thread is not None:
        msg["message_thread_id"] = thread
    return {"message": msg}


def test_waiting_plain_messages_of_one_sender_combine() -> None:
    """Plain text from the same sender in the same topic makes one turn, up to the first other item."""
    updates = [plain("a"), plain("b"), plain("c", sender=2), plain("d")]
    assert routing.combined(updates) == [0, 1]


@pytest.mark.parametrize("stopper", [
    plain("/reset"), plain("x", thread=5), {"message": message(caption="photo", photo=[])},
    {"edited_message": message(text="x")}, plain("x", media_group_id="G"),
], ids=["command", "other topic", "not text", "edit", "album"])
def test_combining_stops_at_anything_else(stopper: dict[str, Any]) -> None:
    """Commands, other topics, media, edits and albums keep their own turns, in order."""
    assert routing.combined([plain("a"), stopper, plain("b")]) == [0]


def test_a_command_at_the_head_is_its_own_turn() -> None:
    """A command first in the mailbox is never merged with what follows."""
    assert routing.combined([plain("/help"), plain("a")]) == [0]


def test_combining_takes_at_most_a_window() -> None:
    """A huge backlog is answered in several turns of at most COMBINE_MAX messages."""
    assert len(routing.combined([plain(str(i)) for i in range(120)])) == routing.COMBINE_MAX


@pytest.mark.parametrize(
    ("update", "stop"),
    [
        pytest.param({"message": {"text": "/stop"}}, True, id="command"),
        pytest.param({"message": {"text": "/STOP@yuanqi_bot now"}}, True, id="command-addressed"),
        pytest.param({"message": {"text": "/stopwatch"}}, False, id="other-command"),
        pytest.param({"message": {"text": "please stop"}}, False, id="plain-text"),
        pytest.param({"message": {"caption": "/stop"}}, False, id="caption"),
        pytest.param({"callback_query": {"data": "stop:17"}}, True, id="button"),
        pytest.param({"callback_query": {"data": "other"}}, False, id="other-button"),
        pytest.param({"stopped_message_generation": {"chat": {"id": 1}, "draft_id": 3}}, True, id="draft"),
        pytest.param({"stopped_message_generation": "odd"}, False, id="draft-malformed"),
        pytest.param({"edited_message": {"text": "/stop"}}, False, id="edited"),
    ],
)
def test_stops_are_recognised_before_queueing(update: dict[str, Any], stop: bool) -> None:
    """Stops skip the chat's mailbox; everything else (edits included) is queued as before."""
    assert routing.is_stop({"update_id": 1, **update}) is stop


def test_the_stop_button_names_its_turn() -> None:
    """The button's data names the turn it stops; data naming none stops nothing."""
    assert routing.turn_of(routing.button_data(4242)) == 4242
    assert routing.button_data(4242).startswith(routing.STOP_DATA)
    assert [routing.turn_of(d) for d in ("stop", "stop:", "stop:x", None)] == [-1] * 4


@pytest.mark.parametrize(
    ("message", "asker"),
    [({"from": {"id": 7}}, 7), ({"from": {"id": True}}, None), ({}, None), ("odd", None)],
)
def test_asker_of(message: Any, asker: int | None) -> None:
    assert routing.asker_of({"update_id": 1, "message": message}) == asker
