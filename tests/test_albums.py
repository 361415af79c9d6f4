"""Albums on a manual clock: later parts are claimed, the first one gathers them all once quiet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import Bot, Message

from bot.albums import STALE_AFTER, Albums
from tests.conftest import ManualClock, settle
from tests.fakes.telegram import BOT_TOKEN

WAIT = 1.5
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


@pytest.fixture
def albums(clock: ManualClock) -> Albums:
    return Albums(clock, WAIT)


def ids(messages: list[Message]) -> list[int]:
    return [m.message_id for m in messages]


def test_first_part_is_not_claimed_later_parts_are(albums: Albums) -> None:
    """The first message of an album is handled on its own; the ones after it are folded in."""
    assert albums.claim(make_message(message_id=100)) is False
    assert albums.claim(make_message(message_id=101)) is True
    assert albums.claim(make_message(message_id=102)) is True


def test_message_without_a_group_is_never_claimed(albums: Albums) -> None:
    """A single photo (no media_group_id) is not an album part."""
    assert albums.claim(make_message(media_group_id=None)) is False
    assert albums.claim(make_message(message_id=101, media_group_id=None)) is False


def test_albums_are_kept_apart(albums: Albums) -> None:
    """Each media_group_id opens its own album."""
    assert albums.claim(make_message(message_id=100, media_group_id="A")) is False
    assert albums.claim(make_message(message_id=101, media_group_id="B")) is False
    assert albums.claim(make_message(message_id=102, media_group_id="A")) is True


async def test_gather_returns_all_parts_sorted_once_quiet(albums: Albums, clock: ManualClock) -> None:
    """After ``wait`` seconds without a new part, gather returns every part ordered by message_id."""
    first = make_message(message_id=100)
    albums.claim(first)
    gathering = asyncio.create_task(albums.gather(first))
    for message_id in (103, 101, 102):  # updates may arrive out of order
        albums.claim(make_message(message_id=message_id))
    await clock.advance(WAIT - 0.01)
    assert not gathering.done()
    await clock.advance(0.01)
    assert gathering.done()
    assert ids(gathering.result()) == [100, 101, 102, 103]


async def test_gather_keeps_waiting_while_parts_arrive(albums: Albums, clock: ManualClock) -> None:
    """Every new part restarts the quiet period, so a slow album is still gathered whole."""
    first = make_message(message_id=100)
    albums.claim(first)
    gathering = asyncio.create_task(albums.gather(first))
    for message_id in range(101, 106):  # one part every 1 s, each before the 1.5 s wait runs out
        await clock.advance(1.0)
        assert not gathering.done(), f"returned before part {message_id}"
        assert albums.claim(make_message(message_id=message_id)) is True
    await clock.advance(WAIT - 0.1)
    assert not gathering.done()
    await clock.advance(0.1)
    assert ids(gathering.result()) == [100, 101, 102, 103, 104, 105]


async def test_gathered_album_is_closed(albums: Albums, clock: ManualClock) -> None:
    """Once gathered, the album is forgotten: a late part with the same id starts afresh."""
    first = make_message(message_id=100)
    albums.claim(first)
    gathering = asyncio.create_task(albums.gather(first))
    await clock.advance(WAIT)
    assert ids(gathering.result()) == [100]
    assert albums.claim(make_message(message_id=101)) is False


async def test_message_without_a_group_gathers_to_itself(albums: Albums) -> None:
    """A single message is its own album, at once."""
    single = make_message(media_group_id=None)
    assert await albums.gather(single) == [single]


async def test_unclaimed_album_message_gathers_to_itself(albums: Albums) -> None:
    """A message whose album was never opened here gathers to itself, without waiting."""
    lone = make_message(message_id=100)
    assert await albums.gather(lone) == [lone]


async def test_gather_started_late_returns_without_waiting(albums: Albums, clock: ManualClock) -> None:
    """If the album has already been quiet for ``wait``, gather returns at once."""
    first = make_message(message_id=100)
    albums.claim(first)
    albums.claim(make_message(message_id=101))
    await clock.advance(WAIT + 1)
    gathering = asyncio.create_task(albums.gather(first))
    await settle()
    assert ids(gathering.result()) == [100, 101]


@pytest.mark.parametrize(
    ("age", "dropped"),
    [
        pytest.param(STALE_AFTER - 1, False, id="fresh-kept"),
        pytest.param(STALE_AFTER, True, id="stale-dropped"),
        pytest.param(STALE_AFTER + 60, True, id="long-stale-dropped"),
    ],
)
async def test_stale_albums_are_dropped_when_a_new_one_opens(
    albums: Albums, clock: ManualClock, age: float, dropped: bool
) -> None:
    """An album nobody gathered is forgotten once it is STALE_AFTER old and another album opens."""
    old = make_message(message_id=100, media_group_id="old")
    albums.claim(old)
    await clock.advance(age)
    albums.claim(make_message(message_id=200, media_group_id="new"))
    assert albums.claim(make_message(message_id=101, media_group_id="old")) is not dropped
