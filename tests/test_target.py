"""TelegramTarget over a real PTB Bot and httpx stack: retried sends keep their thread; unknown outcomes stop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.reply.ports import ChatUnavailable, RateLimited, TransientFailure
from bot.reply.render import Chunk
from bot.tg.target import DeliveryUnknown, TelegramTarget
from tests.fakes.telegram import BOT_TOKEN

GROUP, QUESTION, TOPIC = -100555, 77, 9
ME = {"id": 123456, "is_bot": True, "first_name": "Bot", "username": "yuanqi_test_bot"}
Failure = Callable[[httpx.Request], httpx.Response]


class Api:
    """A Bot API over httpx.MockTransport: each planned failure answers one call, then all succeed."""

    def __init__(self) -> None:
        self.planned: list[Failure] = []
        self.sends: list[dict[str, Any]] = []
        self.edits = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        if method == "getMe":
            return httpx.Response(200, json={"ok": True, "result": ME})
        if self.planned:
            return self.planned.pop(0)(request)
        params = dict(parse_qsl(request.content.decode()))  # PTB posts a form, nested values as JSON
        if method == "editMessageText":
            self.edits += 1
            return httpx.Response(200, json={"ok": True, "result": True})
        self.sends.append(params)
        message = {"message_id": 500 + len(self.sends), "date": 0, "text": params["text"],
                   "chat": {"id": GROUP, "type": "supergroup", "title": "G"}, "from": ME}
        return httpx.Response(200, json={"ok": True, "result": message})


def raises(error: type[httpx.HTTPError]) -> Failure:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("injected", request=request)
    return fail


def status(code: int, description: str, **parameters: int) -> Failure:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return lambda request: httpx.Response(code, json=body)


@pytest.fixture(name="api")
def _api() -> Api:
    return Api()


@pytest.fixture(name="target")
async def _target(api: Api) -> AsyncIterator[TelegramTarget]:
    request = HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(api.handle)})
    async with Bot(BOT_TOKEN, base_url="http://telegram.test/bot", request=request) as bot:
        yield TelegramTarget(bot, GROUP, reply_to=QUESTION, thread_id=TOPIC)


NOT_SENT = [
    pytest.param(status(429, "Too Many Requests: retry after 3", retry_after=3), RateLimited, id="429"),
    pytest.param(raises(httpx.ConnectError), TransientFailure, id="connect-error"),
    pytest.param(raises(httpx.ConnectTimeout), TransientFailure, id="connect-timeout"),
    pytest.param(raises(httpx.PoolTimeout), TransientFailure, id="pool-timeout"),
    pytest.param(raises(httpx.WriteTimeout), TransientFailure, id="write-timeout"),
    pytest.param(status(400, "Bad Request: something odd"), TransientFailure, id="refused-400"),
]


@pytest.mark.parametrize(("failure", "error"), NOT_SENT)
async def test_a_send_telegram_never_took_is_retried_as_the_same_reply(
    api: Api, target: TelegramTarget, failure: Failure, error: type[Exception]
) -> None:
    """After a failure that proves nothing was sent, the retry still replies to the question in its topic."""
    api.planned.append(failure)
    with pytest.raises(error):
        await target.send(Chunk("answer", ()))
    await target.send(Chunk("answer", ()))
    [sent] = api.sends
    assert json.loads(sent["reply_parameters"])["message_id"] == QUESTION
    assert int(sent["message_thread_id"]) == TOPIC


async def test_later_parts_follow_on_their_own(api: Api, target: TelegramTarget) -> None:
    """Only the first message of an answer is a reply; all of them stay in the topic."""
    await target.send(Chunk("part one", ()))
    await target.send(Chunk("part two", ()))
    first, second = api.sends
    assert "reply_parameters" in first and "reply_parameters" not in second
    assert int(first["message_thread_id"]) == int(second["message_thread_id"]) == TOPIC


MAYBE_SENT = [
    pytest.param(raises(httpx.ReadTimeout), id="read-timeout"),
    pytest.param(raises(httpx.RemoteProtocolError), id="connection-dropped"),
    pytest.param(raises(httpx.ReadError), id="read-error"),
    pytest.param(status(502, "Bad Gateway"), id="bad-gateway"),
    pytest.param(status(500, "Internal Server Error"), id="server-error"),
]


@pytest.mark.parametrize("failure", MAYBE_SENT)
async def test_a_send_that_may_have_arrived_stops_the_reply(
    api: Api, target: TelegramTarget, failure: Failure
) -> None:
    """A send whose request went out but whose answer was lost is reported as DeliveryUnknown, a
    ChatUnavailable, so LiveReply gives the reply up instead of sending the message a second time."""
    api.planned.append(failure)
    with pytest.raises(DeliveryUnknown) as info:
        await target.send(Chunk("answer", ()))
    assert isinstance(info.value, ChatUnavailable)


@pytest.mark.parametrize("failure", MAYBE_SENT)
async def test_an_edit_with_a_lost_answer_may_be_retried(api: Api, target: TelegramTarget, failure: Failure) -> None:
    """Editing twice to the same text is harmless, so an edit whose answer was lost is only transient."""
    api.planned.append(failure)
    with pytest.raises(TransientFailure):
        await target.edit(501, Chunk("answer", ()))
    await target.edit(501, Chunk("answer", ()))
    assert api.edits == 1
