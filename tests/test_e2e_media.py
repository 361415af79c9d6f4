"""Photos and files end to end: the agent sees the picture, and never the bot token."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from bot.agent.signing import signed_url
from tests.conftest import _free_port
from tests.fakes.telegram import BOT_TOKEN
from tests.fakes.yuanqi import fetch_image_parts
from tests.harness import RunningBot

CHAT = 6001
GROUP = -100555
PICTURE = bytes(range(256)) * 40  # 10 KiB that is surely not text
SECRET_PART = BOT_TOKEN.split(":")[1]


def image_urls(request_messages: list[dict[str, Any]]) -> list[str]:
    return [p["image_url"]["url"] for p in request_messages[-1]["content"] if p["type"] == "image_url"]


async def signed_bot(make_bot) -> RunningBot:  # type: ignore[no-untyped-def]
    port = _free_port()
    return await make_bot(  # type: ignore[no-any-return]
        media_base_url=f"http://127.0.0.1:{port}", media_listen=f"127.0.0.1:{port}"
    )


async def assert_no_token_anywhere(bot: RunningBot, redis: Redis) -> None:
    bodies = "".join(str(r.body) for r in bot.yuanqi.requests)
    assert SECRET_PART not in bodies
    for key in await redis.keys("*"):
        kind = await redis.type(key)
        if kind == b"list":
            values = await redis.lrange(key, 0, -1)
        elif kind == b"zset":
            values = await redis.zrange(key, 0, -1)
        else:
            values = [await redis.get(key)]
        assert all(SECRET_PART.encode() not in (v or b"") for v in values)


async def test_inline_photo_reaches_the_agent(bot: RunningBot, redis: Redis) -> None:
    """By default a photo is downloaded by the bot and sent inline; the agent gets the same bytes."""
    bot.say(CHAT, None, caption="What is this?", photo=bot.telegram.photo_sizes(PICTURE))
    await bot.wait_text(CHAT, "Echo: What is this?")
    request = bot.yuanqi.requests[0]
    assert request.problems == []
    assert await fetch_image_parts(request) == [PICTURE]
    assert image_urls(request.messages)[0].startswith("data:image/jpeg;base64,")
    await assert_no_token_anywhere(bot, redis)


async def test_signed_link_photo_reaches_the_agent(make_bot, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    """With MEDIA_BASE_URL the agent gets a signed link to the bot's own endpoint serving the bytes."""
    bot = await signed_bot(make_bot)
    bot.say(CHAT, None, caption="And this?", photo=bot.telegram.photo_sizes(PICTURE))
    await bot.wait_text(CHAT, "Echo: And this?")
    request = bot.yuanqi.requests[0]
    [url] = image_urls(request.messages)
    assert url.startswith(bot.settings.media_base_url or "?")
    assert await fetch_image_parts(request) == [PICTURE]
    await assert_no_token_anywhere(bot, redis)


async def test_tampered_and_expired_links_are_refused(make_bot, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    """A link with a changed signature, file or expiry gets 403 and nothing else."""
    bot = await signed_bot(make_bot)
    bot.say(CHAT, None, caption="x", photo=bot.telegram.photo_sizes(PICTURE))
    await bot.wait_text(CHAT, "Echo: x")
    [url] = image_urls(bot.yuanqi.requests[0].messages)
    query = parse_qs(urlsplit(url).query)
    stored = await redis.get("yq:123456:secret")
    media_secret = hmac.new(stored, b"media", hashlib.sha256).digest()
    file_id = urlsplit(url).path.rsplit("/", 1)[1]
    expired = signed_url(bot.settings.media_base_url or "", media_secret, file_id, "image", 1_000_000)
    other = bot.telegram.add_file(b"private")
    forged = url.replace(file_id, other)
    bad_sig = url.replace(query["sig"][0], "0" * 40)
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == PICTURE
        for bad in (expired, forged, bad_sig):
            response = await client.get(bad)
            assert (response.status_code, response.content) == (403, b"forbidden")


async def test_photo_in_a_group_needs_a_mention_in_the_caption(bot: RunningBot) -> None:
    """A group photo is ignored unless its caption mentions the bot."""
    bot.say(GROUP, None, user_id=1, chat_type="supergroup", caption="holiday",
            photo=bot.telegram.photo_sizes(PICTURE))
    bot.say(GROUP, None, user_id=1, chat_type="supergroup", caption="@yuanqi_test_bot where is this?",
            photo=bot.telegram.photo_sizes(PICTURE))
    await bot.wait_text(GROUP, "Echo: Ann: where is this?")
    assert len(bot.yuanqi.requests) == 1
    assert await fetch_image_parts(bot.yuanqi.requests[0]) == [PICTURE]


async def test_album_is_one_turn(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Three photos sent as one album reach the agent as one question with three images."""
    bot: RunningBot = await make_bot(album_wait=0.3)
    pictures = [PICTURE[:1000], PICTURE[1000:2000], PICTURE[2000:3000]]
    for i, data in enumerate(pictures):
        bot.say(CHAT, None, caption="compare these" if i == 0 else None, media_group_id="album-1",
                photo=bot.telegram.photo_sizes(data))
    await bot.wait_text(CHAT, "Echo: compare these")
    await bot.idle()
    assert len(bot.yuanqi.requests) == 1
    assert await fetch_image_parts(bot.yuanqi.requests[0]) == pictures


async def test_earlier_photos_leave_a_note_when_inline(bot: RunningBot) -> None:
    """Inline pictures are not re-sent later; the history says an image was there."""
    bot.say(CHAT, None, caption="look", photo=bot.telegram.photo_sizes(PICTURE))
    await bot.wait_text(CHAT, "Echo: look")
    bot.say(CHAT, "and now?")
    await bot.wait_text(CHAT, "Echo: and now?")
    first_user = bot.yuanqi.requests[1].messages[0]
    assert first_user["content"] == [{"type": "text", "text": "[image] look"}]


async def test_earlier_photos_are_re_signed_with_links(make_bot) -> None:  # type: ignore[no-untyped-def]
    """With signed links, an earlier picture comes along again as a fresh link."""
    bot = await signed_bot(make_bot)
    bot.say(CHAT, None, caption="look", photo=bot.telegram.photo_sizes(PICTURE))
    await bot.wait_text(CHAT, "Echo: look")
    bot.say(CHAT, "what colour was it?")
    await bot.wait_text(CHAT, "Echo: what colour was it?")
    first_user = bot.yuanqi.requests[1].messages[0]
    assert [p["type"] for p in first_user["content"]] == ["text", "image_url"]


async def test_too_large_photo_is_refused(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A photo over MAX_MEDIA_BYTES gets a clear message and no agent call."""
    bot: RunningBot = await make_bot(max_media_bytes=2048)
    big = bytes(5000)
    sizes = bot.telegram.photo_sizes(big, sizes=1)
    bot.say(CHAT, None, caption="big", photo=sizes)
    await bot.wait_text(CHAT, "That file is too large for me to pass on. Please send a smaller one.")
    assert bot.yuanqi.requests == []


DOCUMENT = {"file_name": "report.pdf", "mime_type": "application/pdf", "file_size": 9}


@pytest.mark.parametrize("style", ["image_url", "file_url"])
async def test_documents_follow_the_content_style(make_bot, style: str) -> None:  # type: ignore[no-untyped-def]
    """A PDF is forwarded as a typed file_url part in the file_url style, refused otherwise."""
    bot: RunningBot = await make_bot(media_part_style=style)
    file_id = bot.telegram.add_file(b"%PDF-1.4\n", file_path="documents/file_9.pdf")
    bot.say(CHAT, None, caption="summarise", extra={"document": {**DOCUMENT, "file_id": file_id,
                                                                 "file_unique_id": "doc9"}})
    if style == "image_url":
        await bot.wait_text(CHAT, "I can't read this kind of message. Send text or a photo "
                                  "(with a caption if you like).")
        assert bot.yuanqi.requests == []
    else:
        await bot.wait_text(CHAT, "Echo: summarise")
        part = bot.yuanqi.requests[0].messages[-1]["content"][1]
        assert part["type"] == "file_url" and part["file_url"]["type"] == "pdf"
        assert part["file_url"]["url"] == "data:application/pdf;base64,JVBERi0xLjQK"


UNSUPPORTED = [
    pytest.param({"location": {"latitude": 1.0, "longitude": 2.0}}, id="location"),
    pytest.param({"contact": {"phone_number": "+100", "first_name": "Zed"}}, id="contact"),
    pytest.param({"voice": {"file_id": "v", "file_unique_id": "v1", "duration": 2}}, id="voice"),
]


@pytest.mark.parametrize("extra", UNSUPPORTED)
async def test_other_input_gets_a_short_answer(bot: RunningBot, extra: dict[str, Any]) -> None:
    """Locations, contacts and (in the image_url style) voice get a brief explanation, never a crash."""
    bot.say(CHAT, None, extra=extra)
    message = (await bot.wait_messages(CHAT, 1))[0]
    assert message.text.startswith("I can't read this kind of message.")
    assert bot.yuanqi.requests == []


async def test_edited_messages_are_ignored(bot: RunningBot) -> None:
    """Editing an old message does not trigger a new answer."""
    bot.telegram.push_update({"edited_message": {
        "message_id": 5, "date": 0, "edit_date": 1, "chat": {"id": CHAT, "type": "private"},
        "from": {"id": CHAT, "is_bot": False, "first_name": "Ann"}, "text": "edited"}})
    bot.say(CHAT, "fresh")
    await bot.wait_text(CHAT, "Echo: fresh")
    assert len(bot.yuanqi.requests) == 1


async def test_album_over_the_turn_cap_is_refused(make_bot) -> None:  # type: ignore[no-untyped-def]
    """An album whose files together exceed MAX_TURN_MEDIA_BYTES gets the too-large message, no agent call."""
    bot: RunningBot = await make_bot(album_wait=0.3, max_turn_media_bytes=5000)
    for i in range(3):  # 2,000 bytes each: every file fits, the album does not
        bot.say(CHAT, None, caption="compare" if i == 0 else None, media_group_id="album-big",
                photo=bot.telegram.photo_sizes(bytes([i]) * 2000, sizes=1))
    await bot.wait_text(CHAT, "That file is too large for me to pass on. Please send a smaller one.")
    await bot.idle()
    assert bot.yuanqi.requests == []
