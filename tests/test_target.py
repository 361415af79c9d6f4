"""TelegramTarget over a real PTB Bot and AiohttpRequest, against a Bot API on 127.0.0.1 whose
failures happen for real (a refused or unanswered connection, a full pool, a silent or dropped
connection, Telegram's error answers): retried sends keep their thread; unknown outcomes stop."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot

from bot.reply.ports import ChatUnavailable, RateLimited, TransientFailure
from bot.reply.render import Chunk
from bot.tg.http import AiohttpRequest
from bot.tg.target import DeliveryUnknown, TelegramTarget
from tests.fakes.telegram import BOT_TOKEN

GROUP, QUESTION, TOPIC = -100555, 77, 9
ME = {"id": 123456, "is_bot": True, "first_name": "Bot", "username": "yuanqi_test_bot"}
SHORT = 0.2  # the one timeout a case waits out, seconds


class Api:
    """A Bot API: each planned answer takes one call (getMe aside), then all succeed.

    ``calls`` lists every method but getMe that reached it, answered or not; ``sends`` the
    messages it took.
    """

    def __init__(self) -> None:
        self.planned: list[Answer] = []
        self.calls: list[str] = []
        self.sends: list[dict[str, Any]] = []
        self.edits = 0
        self.holding = asyncio.Event()
        self.release = asyncio.Event()  # set when the test ends, or a held call may go

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        body = await request.read()  # read whole: the bot posts one JSON object
        params: dict[str, Any] = json.loads(body) if body else {}
        if method == "getMe":
            return web.json_response({"ok": True, "result": ME})
        self.calls.append(method)
        if self.planned:
            return await self.planned.pop(0)(self, request)
        if method == "sendMessage":
            self.sends.append(params)
            message = {"message_id": 500 + len(self.sends), "date": 0, "text": params["text"],
                       "chat": {"id": GROUP, "type": "supergroup", "title": "G"}, "from": ME}
            return web.json_response({"ok": True, "result": message})
        if method == "editMessageText":
            self.edits += 1
        return web.json_response({"ok": True, "result": True})


Answer = Callable[[Api, web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _one_call_per_connection(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``Connection: close``: each call connects anew, so a shut port refuses the next one."""
    response = await handler(request)
    response.force_close()
    return response


def _listener(port: int, backlog: int = 128) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the closed calls' TIME_WAIT
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    return sock


class Server:
    """The Api on one port of 127.0.0.1, which can be shut and opened again."""

    def __init__(self, api: Api) -> None:
        self.api = api
        app = web.Application(middlewares=[_one_call_per_connection])
        app.router.add_post(f"/bot{BOT_TOKEN}/{{method}}", api.handle)
        self._runner = web.AppRunner(app)
        self._site: web.SockSite | None = None
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        await self.open()

    async def open(self) -> None:
        sock = _listener(self.port)
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()

    async def shut(self) -> None:
        """Stop listening: connecting is refused (calls already in progress go on)."""
        assert self._site is not None
        await self._site.stop()
        self._site = None

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture(name="api")
def _api() -> Api:
    return Api()


@pytest.fixture(name="server")
async def _server(api: Api) -> AsyncIterator[Server]:
    server = Server(api)
    await server.start()
    yield server
    api.release.set()
    await server.stop()


@asynccontextmanager
async def telegram_target(server: Server, **settings: Any) -> AsyncIterator[TelegramTarget]:
    """The bot's transport, with ``settings`` for AiohttpRequest, and a target replying in a topic."""
    async with Bot(
        BOT_TOKEN, base_url=f"http://127.0.0.1:{server.port}/bot", request=AiohttpRequest(**settings),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    ) as bot:
        yield TelegramTarget(bot, GROUP, reply_to=QUESTION, thread_id=TOPIC)


@dataclass(frozen=True)
class Fault:
    """A failure ``around`` one call, on a transport with ``settings``; ``arrives`` says whether
    the failed call reaches the API at all."""

    around: Callable[[Server, TelegramTarget], AbstractAsyncContextManager[None]]
    arrives: bool
    settings: dict[str, Any] = field(default_factory=dict)


def answered(answer: Answer, **settings: Any) -> Fault:
    """The API gives the next call ``answer``."""
    @asynccontextmanager
    async def around(server: Server, target: TelegramTarget) -> AsyncIterator[None]:
        server.api.planned.append(answer)
        yield
    return Fault(around, arrives=True, settings=settings)


def status(code: int, description: str, **parameters: int) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    async def answer(api: Api, request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=code)
    return answer


def _transport(request: web.Request) -> asyncio.Transport:
    assert request.transport is not None
    return request.transport


async def silent(api: Api, request: web.Request) -> web.StreamResponse:
    """No answer until the test ends, long after the client's read timeout."""
    await api.release.wait()
    return web.json_response({"ok": True, "result": True})


async def dropped(api: Api, request: web.Request) -> web.StreamResponse:
    """The connection closes before the first byte of the answer."""
    _transport(request).close()
    return web.Response()


async def cut_short(api: Api, request: web.Request) -> web.StreamResponse:
    """The answer's head and the start of its body, then the connection closes."""
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "100"})
    await response.prepare(request)
    await response.write(b'{"ok": true, "result": {"mess')
    _transport(request).close()
    return response


async def reset(api: Api, request: web.Request) -> web.StreamResponse:
    """The connection is reset (SO_LINGER 0 sends an RST) instead of answered."""
    sock = _transport(request).get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _transport(request).close()
    return web.Response()


async def held(api: Api, request: web.Request) -> web.StreamResponse:
    api.holding.set()
    await api.release.wait()
    return web.json_response({"ok": True, "result": True})


@asynccontextmanager
async def _refused(server: Server, target: TelegramTarget) -> AsyncIterator[None]:
    await server.shut()
    yield
    await server.open()


@contextmanager
def _full_queue(port: int) -> Iterator[None]:
    """The port listens, but its queue is full: Linux drops further SYNs, so connecting hangs."""
    listener = _listener(port, backlog=0)
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    try:
        yield
    finally:
        for sock in [*fillers, listener]:  # the fillers first: none may reach the reopened port
            sock.close()


@asynccontextmanager
async def _unanswered(server: Server, target: TelegramTarget) -> AsyncIterator[None]:
    await server.shut()
    with _full_queue(server.port):
        yield
    await server.open()


@asynccontextmanager
async def _pool_held(server: Server, target: TelegramTarget) -> AsyncIterator[None]:
    """The pool's one slot is taken by a call the API holds; the send gives up waiting for it."""
    server.api.planned.append(held)
    busy = asyncio.create_task(target.typing())
    await server.api.holding.wait()
    try:
        yield
    finally:
        server.api.release.set()
        await busy


# httpx's WriteTimeout and WriteError are gone: aiohttp has no write timeout, and a failed write
# is an OSError like any other, which may come after part of the request went out.
NOT_SENT = [
    pytest.param(answered(status(429, "Too Many Requests: retry after 3", retry_after=3)), RateLimited,
                 id="429"),
    pytest.param(answered(status(400, "Bad Request: something odd")), TransientFailure, id="refused-400"),
    pytest.param(Fault(_refused, arrives=False), TransientFailure, id="connection-refused"),
    pytest.param(Fault(_unanswered, arrives=False, settings={"connect_timeout": SHORT}), TransientFailure,
                 id="connect-timeout",
                 marks=pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs")),
    pytest.param(Fault(_pool_held, arrives=False, settings={"connection_pool_size": 1, "pool_timeout": SHORT}),
                 TransientFailure, id="pool-timeout"),
]


@pytest.mark.parametrize(("fault", "error"), NOT_SENT)
async def test_a_send_telegram_never_took_is_retried_as_the_same_reply(
    api: Api, server: Server, fault: Fault, error: type[Exception]
) -> None:
    """After a failure that proves nothing was sent, the retry still replies to the question in its topic."""
    async with telegram_target(server, **fault.settings) as target:
        async with fault.around(server, target):
            with pytest.raises(error):
                await target.send(Chunk("answer", ()))
        await target.send(Chunk("answer", ()))
    assert api.calls.count("sendMessage") == (2 if fault.arrives else 1)
    [sent] = api.sends
    assert sent["reply_parameters"]["message_id"] == QUESTION
    assert int(sent["message_thread_id"]) == TOPIC


async def test_a_429_waits_as_long_as_telegram_asks(api: Api, server: Server) -> None:
    """RateLimited carries Telegram's retry_after, the wait before LiveReply sends again."""
    async with telegram_target(server) as target:
        api.planned.append(status(429, "Too Many Requests: retry after 3", retry_after=3))
        with pytest.raises(RateLimited) as info:
            await target.send(Chunk("answer", ()))
    assert info.value.retry_after == 3


async def test_later_parts_follow_on_their_own(api: Api, server: Server) -> None:
    """Only the first message of an answer is a reply; all of them stay in the topic."""
    async with telegram_target(server) as target:
        await target.send(Chunk("part one", ()))
        await target.send(Chunk("part two", ()))
    first, second = api.sends
    assert "reply_parameters" in first and "reply_parameters" not in second
    assert int(first["message_thread_id"]) == int(second["message_thread_id"]) == TOPIC


MAYBE_SENT = [
    pytest.param(answered(silent, read_timeout=SHORT), id="read-timeout"),
    pytest.param(answered(dropped), id="connection-dropped"),
    pytest.param(answered(cut_short), id="answer-cut-short"),
    pytest.param(answered(reset), id="connection-reset"),
    pytest.param(answered(status(502, "Bad Gateway")), id="bad-gateway"),
    pytest.param(answered(status(500, "Internal Server Error")), id="server-error"),
]


@pytest.mark.parametrize("fault", MAYBE_SENT)
async def test_a_send_that_may_have_arrived_stops_the_reply(api: Api, server: Server, fault: Fault) -> None:
    """A send whose request went out but whose answer was lost is reported as DeliveryUnknown, a
    ChatUnavailable, so LiveReply gives the reply up instead of sending the message a second time."""
    async with telegram_target(server, **fault.settings) as target, fault.around(server, target):
        with pytest.raises(DeliveryUnknown) as info:
            await target.send(Chunk("answer", ()))
    assert isinstance(info.value, ChatUnavailable)
    assert api.calls == ["sendMessage"]


@pytest.mark.parametrize("fault", MAYBE_SENT)
async def test_an_edit_with_a_lost_answer_may_be_retried(api: Api, server: Server, fault: Fault) -> None:
    """Editing twice to the same text is harmless, so an edit whose answer was lost is only transient."""
    async with telegram_target(server, **fault.settings) as target:
        async with fault.around(server, target):
            with pytest.raises(TransientFailure):
                await target.edit(501, Chunk("answer", ()))
        await target.edit(501, Chunk("answer", ()))
    assert api.calls == ["editMessageText", "editMessageText"]
    assert api.edits == 1
