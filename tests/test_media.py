"""Media against the fake Telegram with a real PTB Bot: inline data URLs, signed links, the media server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
from aiohttp import web
from telegram import Bot

from bot.agent.media import Located, MediaConfig, MediaError, MediaFetcher, MediaParts, MediaTooLarge
from bot.agent.media_server import CHUNK, MAX_DOWNLOADS, media_app
from bot.agent.signing import signed_url, verify
from bot.tg.incoming import Attachment
from tests.fakes.telegram import BOT_TOKEN, FakeTelegram

SECRET = b"media-secret-for-tests"
PUBLIC = "https://bot.example.com"
NOW = 1_750_000_000.0
TTL = 300
MAX_BYTES = 64 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

# For tests that never reach Telegram; any call would fail to connect.
OFFLINE_BOT = Bot(BOT_TOKEN, base_url="http://127.0.0.1:9/bot", base_file_url="http://127.0.0.1:9/file/bot")

Style = Literal["image_url", "file_url"]


class Wall:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(BOT_TOKEN, base_url=telegram.api_url, base_file_url=telegram.file_url) as bot:
        yield bot


@pytest.fixture
def fetcher(bot: Bot) -> MediaFetcher:
    return MediaFetcher(bot, MAX_BYTES)


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def make_parts(fetcher: MediaFetcher, wall: Wall) -> Callable[..., MediaParts]:
    def make(style: Style = "image_url", *, signed: bool = False, base_url: str = PUBLIC) -> MediaParts:
        config = MediaConfig(style=style, base_url=base_url if signed else None, link_ttl=TTL, secret=SECRET)
        return MediaParts(fetcher, config, wall=wall)

    return make


def get_file_calls(telegram: FakeTelegram) -> int:
    return len(telegram.calls_of("getFile"))


def data_url_bytes(url: str, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    assert url.startswith(prefix), url[:60]
    return base64.b64decode(url.removeprefix(prefix), validate=True)


def link_fields(url: str) -> tuple[str, str, str, str]:
    """(kind, file_id, exp, sig) read back from a signed link."""
    parts = urlsplit(url)
    _, media, kind, raw_id = parts.path.split("/")
    assert media == "media", url
    query = parse_qs(parts.query)
    return kind, unquote(raw_id), query["exp"][0], query["sig"][0]


# --- MediaParts: inline transport ---------------------------------------------------------------


async def test_inline_image_is_a_data_url_of_the_exact_bytes(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """Inline transport downloads the photo in the bot and sends it as a base64 JPEG data URL."""
    file_id = telegram.add_file(JPEG)
    [part] = await make_parts().parts([Attachment(file_id, "image", len(JPEG))])
    assert part["type"] == "image_url"
    assert data_url_bytes(part["image_url"]["url"], "image/jpeg") == JPEG


async def test_inline_photo_from_telegram_sizes(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """The largest of a photo's registered sizes decodes to all of its bytes."""
    largest = telegram.photo_sizes(JPEG)[-1]
    [part] = await make_parts().parts([Attachment(largest["file_id"], "image", largest["file_size"])])
    assert data_url_bytes(part["image_url"]["url"], "image/jpeg") == JPEG


@pytest.mark.parametrize(
    ("file_path", "kind", "mime"),
    [
        pytest.param("documents/file_7.pdf", "pdf", "application/pdf", id="pdf-by-extension"),
        pytest.param("photos/file_7.png", "image", "image/png", id="png-by-extension"),
        pytest.param("voice/file_7", "audio", "audio/ogg", id="audio-default"),
        pytest.param("videos/file_7", "video", "video/mp4", id="video-default"),
        pytest.param("documents/file_7", "txt", "text/plain", id="txt-default"),
        pytest.param("documents/file_7", "doc", "application/octet-stream", id="unknown-default"),
    ],
)
async def test_inline_mime_type_comes_from_the_path_or_the_kind(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts], file_path: str, kind: str, mime: str
) -> None:
    """The data URL is typed by the file's extension, else by a default for its kind."""
    file_id = telegram.add_file(PDF, file_path=file_path)
    [part] = await make_parts("file_url").parts([Attachment(file_id, kind)])
    assert data_url_bytes(part["file_url"]["url"], mime) == PDF


# --- MediaParts: part shapes and accepts --------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "signed"),
    [
        pytest.param("image_url", False, id="image_url-inline"),
        pytest.param("image_url", True, id="image_url-signed"),
        pytest.param("file_url", False, id="file_url-inline"),
        pytest.param("file_url", True, id="file_url-signed"),
    ],
)
async def test_part_shape_follows_the_style(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts], style: Style, signed: bool
) -> None:
    """``image_url`` parts carry only a URL; ``file_url`` parts also say what kind of file it is."""
    file_id = telegram.add_file(PDF, file_path="documents/file_1.pdf")
    [part] = await make_parts(style, signed=signed).parts([Attachment(file_id, "pdf", len(PDF))])
    if style == "file_url":
        assert part == {"type": "file_url", "file_url": {"type": "pdf", "url": part["file_url"]["url"]}}
    else:
        assert part == {"type": "image_url", "image_url": {"url": part["image_url"]["url"]}}


@pytest.mark.parametrize(
    ("style", "kind", "accepted"),
    [
        pytest.param("image_url", "image", True, id="image_url-image"),
        pytest.param("image_url", "pdf", False, id="image_url-pdf"),
        pytest.param("image_url", "audio", False, id="image_url-audio"),
        pytest.param("image_url", "video", False, id="image_url-video"),
        pytest.param("file_url", "image", True, id="file_url-image"),
        pytest.param("file_url", "pdf", True, id="file_url-pdf"),
        pytest.param("file_url", "doc", True, id="file_url-doc"),
        pytest.param("file_url", "txt", True, id="file_url-txt"),
        pytest.param("file_url", "audio", True, id="file_url-audio"),
        pytest.param("file_url", "video", True, id="file_url-video"),
    ],
)
def test_accepts(style: Style, kind: str, accepted: bool) -> None:
    """Images are always accepted; other kinds only in the ``file_url`` style, which can type them."""
    config = MediaConfig(style=style, base_url=None, link_ttl=TTL, secret=SECRET)
    assert MediaParts(MediaFetcher(OFFLINE_BOT, MAX_BYTES), config).accepts(kind) is accepted


async def test_parts_keep_the_attachment_order(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """Several attachments give one part each, in order."""
    first, second = telegram.add_file(b"first"), telegram.add_file(b"second")
    parts = await make_parts().parts([Attachment(first, "image"), Attachment(second, "image")])
    assert [data_url_bytes(p["image_url"]["url"], "image/jpeg") for p in parts] == [b"first", b"second"]


# --- MediaParts: signed transport ---------------------------------------------------------------


async def test_signed_link_verifies_and_downloads_nothing(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """Signed transport sends a link to the bot's endpoint that verifies, without touching Telegram."""
    file_id = telegram.add_file(JPEG)
    parts = await make_parts(signed=True).parts([Attachment(file_id, "image", len(JPEG))])
    url = parts[0]["image_url"]["url"]
    assert url.startswith(f"{PUBLIC}/media/image/")
    kind, linked_id, exp, sig = link_fields(url)
    assert (kind, linked_id, exp) == ("image", file_id, str(int(NOW) + TTL))
    assert verify(SECRET, linked_id, kind, exp, sig, now=NOW + TTL)
    assert not verify(SECRET, linked_id, kind, exp, sig, now=NOW + TTL + 1)
    assert get_file_calls(telegram) == 0


async def test_signed_parts_never_contain_the_bot_token(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """Nothing the agent receives holds the token or a Telegram file URL."""
    photo = telegram.photo_sizes(JPEG)[-1]["file_id"]
    pdf = telegram.add_file(PDF, file_path="documents/file_9.pdf")
    media = make_parts("file_url", signed=True)
    parts = await media.parts([Attachment(photo, "image"), Attachment(pdf, "pdf")])
    parts += media.link_parts([photo])
    text = json.dumps(parts)
    assert BOT_TOKEN not in text
    assert telegram.base_url not in text
    assert "/file/bot" not in text


async def test_link_parts_are_empty_for_inline_transport(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """Earlier images cannot be re-sent inline, so no link parts are made."""
    assert make_parts().link_parts([telegram.add_file(JPEG)]) == []
    assert get_file_calls(telegram) == 0


async def test_link_parts_are_freshly_signed(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts], wall: Wall
) -> None:
    """Earlier images get new links that expire TTL seconds after now, not after the first send."""
    file_ids = [telegram.add_file(JPEG), telegram.add_file(b"other")]
    media = make_parts("file_url", signed=True)
    wall.now = NOW + 3600
    parts = media.link_parts(file_ids)
    assert [p["file_url"]["type"] for p in parts] == ["image", "image"]
    fields = [link_fields(p["file_url"]["url"]) for p in parts]
    assert [(kind, fid, exp) for kind, fid, exp, _ in fields] == [
        ("image", fid, str(int(NOW) + 3600 + TTL)) for fid in file_ids
    ]
    assert all(verify(SECRET, fid, kind, exp, sig, now=wall.now) for kind, fid, exp, sig in fields)
    assert get_file_calls(telegram) == 0


# --- size limits and errors ---------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["inline", "signed"])
async def test_declared_size_over_the_limit_is_refused_before_download(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts], signed: bool
) -> None:
    """An attachment whose declared size exceeds max_bytes fails the whole request, fetching nothing."""
    small, big = telegram.add_file(b"small"), telegram.add_file(b"pretends to be big")
    attachments = [Attachment(small, "image", 5), Attachment(big, "image", MAX_BYTES + 1)]
    with pytest.raises(MediaTooLarge):
        await make_parts(signed=signed).parts(attachments)
    assert get_file_calls(telegram) == 0


async def test_declared_size_at_the_limit_is_fine(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """max_bytes itself is allowed."""
    file_id = telegram.add_file(b"x" * MAX_BYTES)
    [part] = await make_parts().parts([Attachment(file_id, "image", MAX_BYTES)])
    assert len(data_url_bytes(part["image_url"]["url"], "image/jpeg")) == MAX_BYTES


async def test_real_size_over_the_limit_is_refused(
    telegram: FakeTelegram, make_parts: Callable[..., MediaParts]
) -> None:
    """A file without a declared size that turns out larger than max_bytes is refused."""
    file_id = telegram.add_file(b"x" * (MAX_BYTES + 1))
    with pytest.raises(MediaTooLarge):
        await make_parts().parts([Attachment(file_id, "image")])


async def test_fetcher_refuses_a_file_larger_than_its_limit(telegram: FakeTelegram, bot: Bot) -> None:
    """The fetcher itself enforces max_bytes on what Telegram reports."""
    file_id = telegram.add_file(b"x" * 11)
    with pytest.raises(MediaTooLarge):
        await MediaFetcher(bot, max_bytes=10).fetch(file_id, "image")


async def test_unknown_file_is_a_media_error(telegram: FakeTelegram, fetcher: MediaFetcher) -> None:
    """A file Telegram does not know is a MediaError (not 'too large') that does not leak the token."""
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch("AgACAgNO-SUCH-FILE", "image")
    assert not isinstance(caught.value, MediaTooLarge)
    assert BOT_TOKEN not in str(caught.value)


# --- media server -------------------------------------------------------------------------------


@pytest.fixture
async def server(fetcher: MediaFetcher, wall: Wall) -> AsyncIterator[str]:
    """media_app served on 127.0.0.1 on a free port; yields its base URL."""
    runner = web.AppRunner(media_app(fetcher, SECRET, wall=wall), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=10) as client:
        yield client


def link(server: str, file_id: str, kind: str = "image", *, exp: int = int(NOW) + TTL) -> str:
    return signed_url(server, SECRET, file_id, kind, exp)


def assert_reveals_nothing(response: httpx.Response, *secrets: bytes) -> None:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for secret in (BOT_TOKEN.encode(), b"/file/bot", *secrets):
        assert secret not in response.content
        assert secret.decode(errors="replace") not in headers


async def test_valid_link_serves_the_exact_bytes(
    telegram: FakeTelegram, http: httpx.AsyncClient, server: str
) -> None:
    """A fresh signed link returns the file's bytes with an image content type."""
    file_id = telegram.add_file(JPEG)
    response = await http.get(link(server, file_id))
    assert response.status_code == 200
    assert response.content == JPEG
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert_reveals_nothing(response)


async def test_link_made_by_media_parts_is_served(
    telegram: FakeTelegram, http: httpx.AsyncClient, server: str, make_parts: Callable[..., MediaParts]
) -> None:
    """The link MediaParts gives the agent is one the media server honours, end to end."""
    file_id = telegram.add_file(PDF, file_path="documents/file_3.pdf")
    media = make_parts("file_url", signed=True, base_url=server)
    [part] = await media.parts([Attachment(file_id, "pdf", len(PDF))])
    response = await http.get(part["file_url"]["url"])
    assert (response.status_code, response.content) == (200, PDF)
    assert response.headers["content-type"] == "application/pdf"


def tampered(url: str, **query: str) -> str:
    """The same link with some query values replaced (percent-encoded as a client would)."""
    parts = urlsplit(url)
    values = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
    encoded = "&".join(f"{k}={quote(v, safe='')}" for k, v in values.items())
    return parts._replace(query=encoded).geturl()


def flip(sig: str) -> str:
    return sig[:-1] + ("0" if sig[-1] != "0" else "1")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda url, sig: tampered(url, sig=flip(sig)), id="flipped-sig"),
        pytest.param(lambda url, sig: tampered(url, sig=""), id="empty-sig"),
        pytest.param(lambda url, sig: tampered(url, sig="é" * 40), id="non-ascii-sig"),
        pytest.param(lambda url, sig: tampered(url, exp=str(int(NOW) + 10 * TTL)), id="extended-exp"),
        pytest.param(lambda url, sig: tampered(url, exp="tomorrow"), id="word-exp"),
        pytest.param(lambda url, sig: tampered(url, exp="²"), id="superscript-exp"),
        pytest.param(lambda url, sig: tampered(url, exp="9" * 5000), id="overlong-exp"),
        pytest.param(lambda url, sig: url.split("?")[0], id="no-query"),
        pytest.param(lambda url, sig: url.replace("/media/image/", "/media/pdf/"), id="other-kind"),
    ],
)
async def test_tampered_link_is_forbidden_and_reveals_nothing(
    telegram: FakeTelegram, http: httpx.AsyncClient, server: str, change: Callable[[str, str], str]
) -> None:
    """Any altered link gets a bare 403: no file bytes, no token, and Telegram is not asked."""
    file_id = telegram.add_file(JPEG)
    url = link(server, file_id)
    response = await http.get(change(url, link_fields(url)[3]))
    assert response.status_code == 403
    assert_reveals_nothing(response, JPEG[:16])
    assert get_file_calls(telegram) == 0


async def test_link_for_another_file_is_forbidden(
    telegram: FakeTelegram, http: httpx.AsyncClient, server: str
) -> None:
    """A valid signature cannot be moved onto another file id."""
    mine, theirs = telegram.add_file(b"mine"), telegram.add_file(b"theirs")
    response = await http.get(link(server, mine).replace(quote(mine, safe=""), quote(theirs, safe="")))
    assert response.status_code == 403
    assert_reveals_nothing(response, b"theirs")


async def test_expired_link_is_forbidden(
    telegram: FakeTelegram, http: httpx.AsyncClient, server: str, wall: Wall
) -> None:
    """Once the wall clock passes the link's expiry, the same link is refused."""
    file_id = telegram.add_file(JPEG)
    url = link(server, file_id)
    assert (await http.get(url)).status_code == 200
    wall.now = NOW + TTL + 1
    response = await http.get(url)
    assert response.status_code == 403
    assert_reveals_nothing(response, JPEG[:16])


async def test_unknown_file_is_not_found(telegram: FakeTelegram, http: httpx.AsyncClient, server: str) -> None:
    """A correctly signed link to a file Telegram does not have is a 404 that reveals nothing."""
    response = await http.get(link(server, "AgACAgNO-SUCH-FILE"))
    assert response.status_code == 404
    assert_reveals_nothing(response)
    assert get_file_calls(telegram) == 1


async def test_file_over_the_limit_is_refused(
    telegram: FakeTelegram, http: httpx.AsyncClient, server: str
) -> None:
    """A signed link to a file larger than max_bytes is refused with 413, sending no bytes."""
    file_id = telegram.add_file(b"x" * (MAX_BYTES + 1))
    response = await http.get(link(server, file_id))
    assert response.status_code == 413
    assert_reveals_nothing(response, b"x" * 100)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/", 404, id="root"),
        pytest.param("/media/image", 404, id="no-file-id"),
        pytest.param(f"/file/bot{BOT_TOKEN}/photos/file_1.jpg", 404, id="telegram-file-path"),
    ],
)
async def test_other_paths_serve_nothing(
    telegram: FakeTelegram, http: httpx.AsyncClient, path: str, status: int
) -> None:
    """Only /media/... exists; Telegram's own file paths are not proxied."""
    telegram.add_file(JPEG)
    response = await http.get(path)
    assert response.status_code == status
    assert JPEG[:16] not in response.content



# --- bounded memory -----------------------------------------------------------------------------


def inline_parts(fetcher: MediaFetcher, max_turn_bytes: int) -> MediaParts:
    config = MediaConfig(style="file_url", base_url=None, link_ttl=TTL, secret=SECRET,
                         max_turn_bytes=max_turn_bytes)
    return MediaParts(fetcher, config, wall=Wall())


async def test_turn_total_over_the_cap_is_refused_before_download(
    telegram: FakeTelegram, fetcher: MediaFetcher
) -> None:
    """Declared sizes that together exceed the turn's cap are refused without asking Telegram."""
    files = [Attachment(telegram.add_file(JPEG), "image", len(JPEG)) for _ in range(3)]
    with pytest.raises(MediaTooLarge):
        await inline_parts(fetcher, 3 * len(JPEG) - 1).parts(files)
    assert get_file_calls(telegram) == 0


async def test_undeclared_sizes_are_counted_as_they_download(
    telegram: FakeTelegram, fetcher: MediaFetcher
) -> None:
    """Without declared sizes the bytes received count against the cap, and the turn is refused."""
    files = [Attachment(telegram.add_file(PDF, file_path=f"documents/f{i}.pdf"), "pdf") for i in range(3)]
    assert len(await inline_parts(fetcher, 3 * len(PDF)).parts(files)) == 3
    with pytest.raises(MediaTooLarge):
        await inline_parts(fetcher, 3 * len(PDF) - 1).parts(files)


class BlockingFetcher(MediaFetcher):
    """A fetcher whose lookups wait until the test lets them go, counting those waiting."""

    def __init__(self, bot: Bot) -> None:
        super().__init__(bot, MAX_BYTES)
        self.release = asyncio.Event()
        self.all_waiting = asyncio.Event()
        self.waiting = 0

    async def locate(self, file_id: str, kind: str, limit: int | None = None) -> Located:
        self.waiting += 1
        if self.waiting == MAX_DOWNLOADS:
            self.all_waiting.set()
        await self.release.wait()
        return await super().locate(file_id, kind, limit)


async def test_downloads_beyond_the_bound_get_503(telegram: FakeTelegram, bot: Bot) -> None:
    """With 8 downloads running, a 9th waits briefly, then gets 503 with Retry-After; the 8 finish."""
    slow = BlockingFetcher(bot)
    runner = web.AppRunner(media_app(slow, SECRET, wall=Wall(), queue_wait=0.2), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server = f"http://127.0.0.1:{runner.addresses[0][1]}"
    file_id = telegram.add_file(JPEG)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            running = [asyncio.ensure_future(client.get(link(server, file_id))) for _ in range(MAX_DOWNLOADS)]
            await asyncio.wait_for(slow.all_waiting.wait(), 5)
            extra = await client.get(link(server, file_id))
            assert (extra.status_code, extra.headers.get("retry-after")) == (503, "2")
            assert slow.waiting == MAX_DOWNLOADS
            slow.release.set()
            assert [r.content for r in await asyncio.gather(*running)] == [JPEG] * MAX_DOWNLOADS
    finally:
        await runner.cleanup()


async def test_large_file_is_streamed_whole(telegram: FakeTelegram, bot: Bot) -> None:
    """A file many chunks long arrives byte for byte with its length, through the streaming relay."""
    data = bytes(range(256)) * (CHUNK * 5 // 256) + b"tail"
    runner = web.AppRunner(media_app(MediaFetcher(bot, len(data)), SECRET, wall=Wall()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(link(server, telegram.add_file(data)))
    finally:
        await runner.cleanup()
    assert (response.status_code, response.content) == (200, data)
    assert response.headers["content-length"] == str(len(data))
    assert_reveals_nothing(response)
