"""Albums: while an album's turn runs, any of its parts gathers all of them, oldest first."""

from __future__ import annotations

from typing import Any

from telegram import Bot, Message

from bot.tg.albums import Albums
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


def test_held_album_gathers_all_parts_sorted() -> None:
    """Parts handed over in any order come back sorted by message id."""
    albums = Albums()
    parts = [make_message(message_id=i) for i in (102, 100, 101)]
    with albums.holding(parts):
        assert ids(albums.gather(parts[1])) == [100, 101, 102]


def test_album_is_forgotten_after_its_turn() -> None:
    """Once the turn is over, a part gathers only itself."""
    albums = Albums()
    first = make_message(message_id=100)
    with albums.holding([first, make_message(message_id=101)]):
        pass
    assert ids(albums.gather(first)) == [100]


def test_message_without_a_group_gathers_to_itself() -> None:
    """A plain message is its own turn, even while an album is held."""
    albums = Albums()
    single = make_message(media_group_id=None)
    with albums.holding([make_message(message_id=100)]):
        assert albums.gather(single) == [single]


def test_albums_of_other_chats_are_kept_apart() -> None:
    """An album id is looked up per chat."""
    albums = Albums()
    with albums.holding([make_message(message_id=100), make_message(message_id=101)]):
        other = make_message(message_id=100, chat={"id": 7, "type": "private", "first_name": "Bo"})
        assert ids(albums.gather(other)) == [100]
