"""AiohttpRequest against a local aiohttp server: the bodies HTTPXRequest sent, PTB's errors, no token in them."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageEntity
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.ops.metrics import Metrics
from bot.tg.http import NOT_SENT, POOL_TIMEOUT_MESSAGE, AiohttpRequest, CountingRequest, PoolTimeout

TOKEN = "123456:SECRET-token_abc"
MESSAGE = {"message_id": 7, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "héllo"}
FILE = bytes(range(256)) * 40


class Api:
    """A Bot API that records what it was sent; ``hang`` holds calls until ``release`` is set."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        seen: dict[str, Any] = {"method": method, "http": request.method, "headers": request.headers}
        self.seen.append(seen)
        if request.content_type.startswith("multipart/"):  # read from the stream: the body is not kept
            seen["form"] = {name: (value.filename, value.content_type, value.file.read())
                            if isinstance(value, web.FileField) else value
                            for name, value in (await request.post()).items()}
        else:
            seen["body"] = await request.read()
            seen["form"] = dict(await request.post())
            if request.content_type == "application/json":
                seen["parameters"] = json.loads(seen["body"])
        if method == "hang":
            self.holding.set()
            await self.release.wait()
        if method == "slow":
            await asyncio.sleep(0.3)
        if method == "limited":
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests",
                                      "parameters": {"retry_after": 3}}, status=429)
        return web.json_response({"ok": True, "result": MESSAGE})

    async def file(self, request: web.Request) -> web.Response:
        self.seen.append({"http": request.method, "headers": request.headers})
        return web.Response(body=FILE, content_type="application/octet-stream")


@pytest.fixture(name="api")
async def _api() -> AsyncIterator[Api]:
    api = Api()
    yield api
    api.release.set()


@pytest.fixture(name="base")
async def _base(api: Api) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/{{method}}", api.call)
    app.router.add_get(f"/file/bot{TOKEN}/docs/notes.bin", api.file)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url(""))


@asynccontextmanager
async def opened(request: AiohttpRequest) -> AsyncIterator[AiohttpRequest]:
    async with request:
        yield request


def data(**parameters: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(name, value) for name, value in parameters.items()])


def assert_hides_token(exc: BaseException) -> None:
    """Neither the message nor any exception it was raised from names the URL, which holds the token."""
    assert TOKEN not in "".join(traceback.format_exception(exc))
    link: BaseException | None = exc
    while link is not None:
        assert TOKEN not in repr(link)
        link = link.__cause__ or link.__context__


@pytest.fixture(name="refused_port")
def _refused_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(name="unanswered_port")
def _unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: Linux drops further SYNs, so connecting hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    yield port
    for sock in [*fillers, listener]:
        sock.close()


async def test_a_call_posts_its_parameters_as_one_json_object(api: Api, base: str) -> None:
    """The parameters as one JSON object (PTB's values: objects as dicts), and PTB's User-Agent."""
    sent = data(chat_id=1, text="héllo & 你好", entities=[MessageEntity("bold", 0, 5)],
                reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("stop", callback_data="s:1")]]))
    async with opened(AiohttpRequest()) as request:
        result = await request.post(f"{base}/bot{TOKEN}/sendMessage", sent)
    assert result == MESSAGE
    [seen] = api.seen
    assert seen["http"] == "POST" and json.loads(seen["body"]) == sent.parameters
    assert seen["parameters"]["text"] == "héllo & 你好"
    assert seen["parameters"]["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["User-Agent"] == AiohttpRequest.USER_AGENT


async def test_a_call_without_parameters_sends_no_body(api: Api, base: str) -> None:
    async with opened(AiohttpRequest()) as request:
        await request.post(f"{base}/bot{TOKEN}/getMe", data())
    [seen] = api.seen
    assert seen["body"] == b"" and "Content-Type" not in seen["headers"]


async def test_files_go_as_multipart(api: Api, base: str) -> None:
    """Files are parts with their name and type; the other parameters are fields of JSON values."""
    sent = data(chat_id=1, caption="a file", document=InputFile(FILE, filename="notes.bin"))
    async with opened(AiohttpRequest()) as request:
        await request.post(f"{base}/bot{TOKEN}/sendDocument", sent)
    [seen] = api.seen
    assert seen["headers"]["Content-Type"].startswith("multipart/form-data")
    form = seen["form"]
    assert form["chat_id"] == "1" and form["caption"] == "a file"
    assert form["document"] == ("notes.bin", "application/octet-stream", FILE)


async def test_retrieve_downloads_a_file_with_get(api: Api, base: str) -> None:
    async with opened(AiohttpRequest()) as request:
        assert await request.retrieve(f"{base}/file/bot{TOKEN}/docs/notes.bin") == FILE
    [seen] = api.seen
    assert seen["http"] == "GET"


async def test_a_call_may_wait_longer_than_the_default_read_timeout(api: Api, base: str) -> None:
    """getUpdates long-polls with its own read timeout, past the request's default."""
    async with opened(AiohttpRequest(read_timeout=0.1)) as request:
        assert request.read_timeout == 0.1
        assert await request.post(f"{base}/bot{TOKEN}/slow", data(), read_timeout=5) == MESSAGE


async def test_a_silent_server_is_a_read_timeout_that_may_have_been_sent(api: Api, base: str) -> None:
    async with opened(AiohttpRequest(read_timeout=0.2)) as request:
        with pytest.raises(TimedOut) as info:
            await request.post(f"{base}/bot{TOKEN}/hang", data(chat_id=1))
    assert not isinstance(info.value.__cause__, NOT_SENT)
    assert_hides_token(info.value)


async def test_a_refused_connection_is_a_network_error_before_sending(refused_port: int) -> None:
    async with opened(AiohttpRequest()) as request:
        with pytest.raises(NetworkError) as info:
            await request.post(f"http://127.0.0.1:{refused_port}/bot{TOKEN}/sendMessage", data(chat_id=1))
    assert not isinstance(info.value, TimedOut)
    assert isinstance(info.value.__cause__, NOT_SENT)
    assert_hides_token(info.value)


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs to a full listen queue")
async def test_a_connect_timeout_is_timed_out_before_sending(unanswered_port: int) -> None:
    """aiohttp names the whole URL in this error; the token is cut out of it."""
    async with opened(AiohttpRequest(connect_timeout=0.2)) as request:
        with pytest.raises(TimedOut) as info:
            await request.post(f"http://127.0.0.1:{unanswered_port}/bot{TOKEN}/sendMessage", data(chat_id=1))
    assert isinstance(info.value.__cause__, NOT_SENT)
    assert_hides_token(info.value)


async def test_a_full_pool_is_a_pool_timeout_and_nothing_is_sent(api: Api, base: str) -> None:
    async with opened(AiohttpRequest(connection_pool_size=1, pool_timeout=0.1)) as request:
        first = asyncio.create_task(request.post(f"{base}/bot{TOKEN}/hang", data()))
        await api.holding.wait()
        with pytest.raises(TimedOut, match="Pool timeout") as info:
            await request.post(f"{base}/bot{TOKEN}/sendMessage", data(chat_id=1))
        assert info.value.message == POOL_TIMEOUT_MESSAGE
        assert isinstance(info.value.__cause__, PoolTimeout) and isinstance(info.value.__cause__, NOT_SENT)
        api.release.set()
        assert await first == MESSAGE
        assert await request.post(f"{base}/bot{TOKEN}/sendMessage", data(chat_id=1)) == MESSAGE
    assert [seen["method"] for seen in api.seen] == ["hang", "sendMessage"]


async def test_calls_and_429s_are_counted(base: str) -> None:
    metrics = Metrics()
    async with opened(CountingRequest(metrics)) as request:
        await request.post(f"{base}/bot{TOKEN}/sendMessage", data(chat_id=1))
        with pytest.raises(RetryAfter):
            await request.post(f"{base}/bot{TOKEN}/limited", data(chat_id=1))
    def count(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(f"yuanqi_bot_{name}", labels)
    assert count("telegram_calls_total", method="sendMessage") == 1
    assert count("telegram_calls_total", method="limited") == 1
    assert count("telegram_429_total") == 1


async def test_shutdown_closes_and_initialize_opens_again(base: str) -> None:
    request = AiohttpRequest()
    for _ in range(2):
        async with opened(request):
            assert await request.post(f"{base}/bot{TOKEN}/sendMessage", data(chat_id=1)) == MESSAGE
