"""TurnParts: while a turn of several messages runs, its leading message gathers all of them."""

from __future__ import annotations

from typing import Any

from telegram import Bot, Message

from bot.tg.parts import TurnParts
from tests.fakes.telegram import BOT_TOKEN

BOT = Bot(BOT_TOKEN, base_url="http://127.0.0.1:9/bot", base_file_url="http://127.0.0.1:9/file/bot")
ANN = {"id": 424242, "is_bot": False, "first_name": "Ann"}
PRIVATE = {"id": 424242, "type": "private", "first_name": "Ann"}


def make_message(**overrides: Any) -> Message:
    """One photo of an album, as Telegram sends each part (the caption rides on one of them)."""
    message_id = overrides.get("message_id", 100)
    data: dict[str, Any] = {
        "message_id": message_id, "date": 1_750_000_000, "chat": PRIVATE, "from": ANN,
        "media_group_id": "13906742069561734",
        "photo": [{"file_id": f"AgACAgPART-{message_id}", "file_unique_id": f"AQADP{message_id}",
                   "width": 1280, "height": 960, "file_size": 120_000}],
    }
    data.update(overrides)
    return Message.de_json({k: v for k, v in data.items() if v is not None}, BOT)


def ids(messages: list[Message]) -> list[int]:
    return [m.message_id for m in messages]


def test_the_leading_message_gathers_all_parts_sorted() -> None:
    """The message the turn is handed over with gathers every part, sorted by message id."""
    turn = TurnParts()
    parts = [make_message(message_id=i) for i in (101, 102, 100)]
    with turn.holding(parts):
        assert ids(turn.gather(parts[0])) == [100, 101, 102]


def test_parts_are_forgotten_after_the_turn() -> None:
    """Once the turn is over, its leading message gathers only itself."""
    turn = TurnParts()
    first = make_message(message_id=100)
    with turn.holding([first, make_message(message_id=101)]):
        pass
    assert ids(turn.gather(first)) == [100]


def test_a_message_alone_gathers_to_itself() -> None:
    """A turn of one message needs no bookkeeping."""
    turn = TurnParts()
    single = make_message(media_group_id=None)
    with turn.holding([single]):
        assert turn.gather(single) == [single]


def test_combined_text_messages_are_parts_too() -> None:
    """Plain messages sent while the last turn ran are handed over together, like an album."""
    turn = TurnParts()
    parts = [make_message(message_id=i, media_group_id=None, photo=None, text=f"m{i}") for i in (5, 6)]
    with turn.holding(parts):
        assert [m.text for m in turn.gather(parts[0])] == ["m5", "m6"]


def test_turns_of_other_chats_are_kept_apart() -> None:
    """A leading message is looked up per chat."""
    turn = TurnParts()
    with turn.holding([make_message(message_id=100), make_message(message_id=101)]):
        other = make_message(message_id=100, chat={"id": 7, "type": "private", "first_name": "Bo"})
        assert ids(turn.gather(other)) == [100]
