"""Self-tests of the fake Bot API, driven through the real python-telegram-bot ``Bot``."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram.error import BadRequest, Conflict, EndPointNotFound, InvalidToken, RetryAfter

from tests.fakes.telegram import (
    BOT_TOKEN,
    SECRET_HEADER,
    FakeTelegram,
    RateLimits,
    WebhookDelivery,
    utf16_len,
)

CHAT = 4242


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def make_bot(fake: FakeTelegram, token: str = BOT_TOKEN) -> telegram.Bot:
    return telegram.Bot(token=token, base_url=fake.api_url, base_file_url=fake.file_url)


def retry_seconds(exc: RetryAfter) -> int:
    return int(exc._retry_after.total_seconds())


async def test_get_me_and_send_message_with_entities(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:  # initialize() already calls getMe
        me = await bot.get_me()
        assert (me.id, me.username, me.is_bot) == (123456, "yuanqi_test_bot", True)
        entity = telegram.MessageEntity(type="bold", offset=3, length=2)
        sent = await bot.send_message(CHAT, "hé 🙂 ok", entities=[entity])
        plain = await bot.send_message(CHAT, "123", reply_to_message_id=sent.message_id)

    assert sent.message_id == 1000 and plain.message_id == 1001
    assert sent.entities == (entity,) and sent.from_user is not None and sent.from_user.is_bot
    assert plain.text == "123"  # not decoded to an int
    assert plain.reply_to_message is not None
    assert plain.reply_to_message.message_id == 1000
    call = fake.calls_of("sendMessage", chat_id=CHAT)[0]
    assert call.params["chat_id"] == CHAT and call.status == 200
    assert call.params["entities"] == [{"type": "bold", "offset": 3, "length": 2}]
    assert [m.text for m in fake.bot_messages(CHAT)] == ["hé 🙂 ok", "123"]
    assert fake.messages(CHAT)[1].reply_to_message_id == 1000


async def test_edit_not_modified_and_length_errors(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        sent = await bot.send_message(CHAT, "draft")
        edited = await bot.edit_message_text("final", chat_id=CHAT, message_id=sent.message_id)
        assert isinstance(edited, telegram.Message)
        assert edited.text == "final" and edited.edit_date is not None
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("final", chat_id=CHAT, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(CHAT, "🙂" * 2049)  # 4098 UTF-16 units
        await bot.send_message(CHAT, "🙂" * 2048)  # exactly 4096 is fine
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(CHAT, "  \n")
        with pytest.raises(BadRequest, match="entity beyond the end of text"):
            await bot.send_message(
                CHAT, "🙂", entities=[telegram.MessageEntity("bold", offset=1, length=2)]
            )
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("x", chat_id=CHAT, message_id=99)

    assert fake.bot_messages(CHAT)[0].versions == ["draft", "final"]
    assert utf16_len("🙂") == 2
    assert [c.status for c in fake.calls_of("editMessageText")] == [200, 400, 400]


async def test_fail_next_surfaces_as_retry_after(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", error_code=429, description="Too Many Requests: retry after 7",
                   retry_after=7, chat_id=CHAT)
    async with make_bot(fake) as bot:
        await bot.send_message(CHAT + 1, "other chat is unaffected")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "hello")
        assert retry_seconds(caught.value) == 7
        await bot.send_message(CHAT, "only once")  # counted as a violation: still within 7 s
    assert fake.too_many_requests == 0 and fake.violations == 1


async def test_get_updates_long_poll_returns_pushed_update(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=5))
        await fake.wait_for(lambda: bool(fake.calls_of("getUpdates")))
        await asyncio.sleep(0)
        assert not poll.done()
        sent = fake.send_user_message(CHAT, "/start@yuanqi_test_bot hi @someone")
        (update,) = await poll
        assert update.update_id == 1 and update.message is not None
        assert update.message.text == sent["text"] and update.message.chat.type == "private"
        kinds = [(e.type, e.offset, e.length) for e in update.message.entities]
        assert kinds == [("bot_command", 0, 22), ("mention", 26, 8)]
        # confirming with offset drops the update; an empty queue answers [] after the timeout
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert fake.messages(CHAT)[0].from_bot is False


async def test_user_message_replies_to_bot_message(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        answer = await bot.send_message(-100, "hi all", message_thread_id=7)
        msg = fake.send_user_message(-100, "thanks", chat_type="supergroup", chat_title="G",
                                     message_thread_id=7, is_topic_message=True,
                                     reply_to_message_id=answer.message_id)
        (update,) = await bot.get_updates()
    assert msg["message_id"] == 1001  # shares the chat's counter with bot messages
    assert update.message is not None and update.message.reply_to_message is not None
    assert update.message.reply_to_message.from_user is not None
    assert update.message.reply_to_message.from_user.id == 123456
    assert update.message.chat.title == "G" and update.message.is_topic_message


async def test_get_file_and_download(fake: FakeTelegram) -> None:
    data = bytes(range(256)) * 10
    sizes = fake.photo_sizes(data)
    assert [s["file_size"] for s in sizes] == [853, 1706, 2560]
    async with make_bot(fake) as bot:
        tg_file = await bot.get_file(sizes[-1]["file_id"])
        assert tg_file.file_size == len(data)
        assert bytes(await tg_file.download_as_bytearray()) == data
        with pytest.raises(BadRequest, match="Invalid file_id"):
            await bot.get_file("nope")


async def test_rate_limits_with_fake_clock() -> None:
    now = 0.0
    limits = RateLimits(per_chat_per_second=1.0, per_chat_burst=3, per_group_per_minute=4)
    async with FakeTelegram(clock=lambda: now, limits=limits) as fake, make_bot(fake) as bot:
        for i in range(3):
            await bot.send_message(CHAT, f"burst {i}")
        await bot.send_chat_action(CHAT, "typing")  # not a message op
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "one too many")
        assert retry_seconds(caught.value) == 1
        assert (fake.too_many_requests, fake.violations) == (1, 0)
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT, "ignoring retry_after")
        assert (fake.too_many_requests, fake.violations) == (2, 1)
        now = 1.0
        await bot.send_message(CHAT, "after waiting")

        for i in range(4):  # the group window allows 4 per minute
            now = 10.0 + 2 * i
            await bot.send_message(-5, f"group {i}")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(-5, "fifth")
        assert retry_seconds(caught.value) == 54  # the first one leaves the window at 70
    assert len(fake.bot_messages(CHAT)) == 4 and len(fake.bot_messages(-5)) == 4


async def test_drafts_tokens_and_unknown_methods(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        assert await bot.send_message_draft(CHAT, draft_id=5, text="thinking…")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message_draft(-100, draft_id=5, text="x")
        with pytest.raises(EndPointNotFound):  # PTB's mapping of 404 after initialize()
            await bot.do_api_request("noSuchMethod")
    assert [(d.draft_id, d.text) for d in fake.drafts[CHAT]] == [(5, "thinking…")]
    assert fake.calls_of("noSuchMethod")[0].result == "Not Found: method not found"
    with pytest.raises(InvalidToken, match="was rejected"):
        async with make_bot(fake, token="654321:wrong"):
            pass
    with pytest.raises(AssertionError, match="sendMessageDraft"):
        await fake.wait_for(lambda: False, timeout=0.05)


async def test_upload_admins_delete_and_raw_json_body(fake: FakeTelegram) -> None:
    fake.admins[-100] = {7}
    async with make_bot(fake) as bot:
        photo = await bot.send_photo(CHAT, b"\x89PNG fake", caption="a @cat")
        assert photo.caption == "a @cat" and photo.photo[-1].file_size == 9
        assert await bot.delete_message(CHAT, photo.message_id)
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await bot.delete_message(CHAT, photo.message_id)
        admin = await bot.get_chat_member(-100, 7)
        member = await bot.get_chat_member(-100, 8)
        assert (admin.status, member.status) == ("administrator", "member")
        assert await bot.set_webhook("https://example.invalid/hook", secret_token="s3")
        assert (await bot.get_webhook_info()).url == "https://example.invalid/hook"
    assert fake.bot_messages(CHAT) == [] and fake.messages(CHAT)[0].deleted
    assert fake.webhook_secret == "s3"

    url = f"{fake.api_url}{BOT_TOKEN}/sendMessage"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"chat_id": "5", "text": "123"}) as response:
            body = await response.json()
        assert response.status == 200 and body["result"]["text"] == "123"
        async with session.post(url, data={"chat_id": "5", "text": "x" * 4097}) as response:
            body = await response.json()
        assert (response.status, body["error_code"]) == (400, 400)
        assert body["description"] == "Bad Request: message is too long"


# ---------------------------------------------------------------------- drafts and buttons


def stop_keyboard(data: str = "stop:1") -> telegram.InlineKeyboardMarkup:
    button = telegram.InlineKeyboardButton("Stop", callback_data=data)
    return telegram.InlineKeyboardMarkup([[button]])


async def test_draft_stop_flags_and_length(fake: FakeTelegram) -> None:
    """can_stop/keep_on_stop arrive through api_kwargs; drafts may be empty but not too long."""
    async with make_bot(fake) as bot:
        assert await bot.send_message_draft(
            CHAT, draft_id=7, text="", api_kwargs={"can_stop": True, "keep_on_stop": "false"})
        assert await bot.send_message_draft(CHAT, draft_id=7, text="🙂" * 2048)  # 4096 units
        with pytest.raises(BadRequest, match="Text is too long"):
            await bot.send_message_draft(CHAT, draft_id=7, text="🙂" * 2049)
    url = f"{fake.api_url}{BOT_TOKEN}/sendMessageDraft"
    async with aiohttp.ClientSession() as session:
        for flags in ({"can_stop": "true", "keep_on_stop": True}, {"can_stop": False}):
            async with session.post(url, json={"chat_id": CHAT, "draft_id": 8, **flags}) as resp:
                assert resp.status == 200
    seen = [(d.draft_id, d.can_stop, d.keep_on_stop) for d in fake.drafts[CHAT]]
    assert seen == [(7, True, False), (7, False, False), (8, True, True), (8, False, False)]
    assert fake.calls_of("sendMessageDraft")[2].result == "Bad Request: text is too long"


async def test_drafts_unsupported_and_one_off_failure(fake: FakeTelegram) -> None:
    """drafts_supported=False answers 404 like an older server; fail_next fails one call."""
    fake.fail_next("sendMessageDraft", error_code=400, description="Bad Request: DRAFT_INVALID")
    async with make_bot(fake) as bot:
        with pytest.raises(BadRequest, match="Draft_invalid"):
            await bot.send_message_draft(CHAT, draft_id=1, text="a")
        assert await bot.send_message_draft(CHAT, draft_id=1, text="b")
        fake.drafts_supported = False
        with pytest.raises(InvalidToken, match="Not Found"):  # PTB's mapping of any 404
            await bot.send_message_draft(CHAT, draft_id=1, text="c")
    call = fake.calls_of("sendMessageDraft")[-1]
    assert (call.status, call.result) == (404, "Not Found")
    assert [d.text for d in fake.drafts[CHAT]] == ["b"]


async def test_stop_generation_respects_allowed_updates(fake: FakeTelegram) -> None:
    """The stopped_message_generation update only reaches a bot that asks for it."""
    async with make_bot(fake) as bot:
        assert await bot.get_updates(allowed_updates=["message"]) == ()
        fake.stop_generation(CHAT, 7)
        assert await bot.get_updates(allowed_updates=["message"]) == ()  # dropped for good
        wanted = ["message", "callback_query", "stopped_message_generation"]
        assert await bot.get_updates(allowed_updates=wanted) == ()
        fake.send_user_message(CHAT, "hi", first_name="Bo")
        stopped = fake.stop_generation(CHAT, 9, thread_id=3)
        updates = await bot.get_updates(allowed_updates=wanted)
    assert [u.update_id for u in updates] == [2, 3]
    assert updates[1].api_kwargs["stopped_message_generation"] == stopped  # PTB 22 lacks the type
    assert stopped == {"chat": {"id": CHAT, "type": "private", "first_name": "Bo"},
                       "draft_id": 9, "message_thread_id": 3}
    with pytest.raises(AssertionError, match="private chats"):
        fake.stop_generation(-100, 1)


async def test_press_button_and_answer_callback_query(fake: FakeTelegram) -> None:
    """A pressed button reaches the bot as a callback_query, which it answers exactly once."""
    async with make_bot(fake) as bot:
        sent = await bot.send_message(CHAT, "working…", reply_markup=stop_keyboard())
        query = fake.press_button(CHAT, sent.message_id, "stop:1", user_id=CHAT,
                                  language_code="zh-hans")
        (update,) = await bot.get_updates()
        assert update.callback_query is not None and update.callback_query.data == "stop:1"
        shown = update.callback_query.message
        assert isinstance(shown, telegram.Message) and shown.reply_markup == stop_keyboard()
        assert update.callback_query.from_user.language_code == "zh-hans"
        assert await update.callback_query.answer("Stopped")
        with pytest.raises(BadRequest, match="Query is too old"):  # answered already
            await update.callback_query.answer()
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query("123", show_alert=True)
        again = fake.press_button(CHAT, sent.message_id, "stop:1", user_id=CHAT,
                                  chat_type="private")
        assert await bot.answer_callback_query(again["id"], show_alert=True)
    assert query["id"] != again["id"] and query["chat_instance"] == again["chat_instance"]
    assert fake.callback_answers == [{"id": query["id"], "text": "Stopped", "show_alert": False},
                                     {"id": again["id"], "text": None, "show_alert": True}]
    with pytest.raises(AssertionError, match="no button 'stop:2'"):
        fake.press_button(CHAT, sent.message_id, "stop:2", user_id=CHAT)
    with pytest.raises(AssertionError, match="no message 99"):
        fake.press_button(CHAT, 99, "stop:1", user_id=CHAT)


async def test_inline_keyboard_history(fake: FakeTelegram) -> None:
    """Sends and every edit (text or markup) add to SentMessage.markups; removed buttons can't be
    pressed."""
    async with make_bot(fake) as bot:
        sent = await bot.send_message(CHAT, "a", reply_markup=stop_keyboard())
        mid = sent.message_id
        await bot.edit_message_text("ab", chat_id=CHAT, message_id=mid,
                                    reply_markup=stop_keyboard())
        assert fake.bot_messages(CHAT)[0].buttons == ["stop:1"]
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_reply_markup(CHAT, mid, reply_markup=stop_keyboard())
        edited = await bot.edit_message_reply_markup(CHAT, mid, reply_markup=stop_keyboard("s2"))
        assert isinstance(edited, telegram.Message) and edited.reply_markup == stop_keyboard("s2")
        await bot.edit_message_reply_markup(CHAT, mid)  # no markup: the keyboard goes
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_reply_markup(
                CHAT, mid, reply_markup=telegram.InlineKeyboardMarkup([]))
        with pytest.raises(AssertionError, match="no button"):
            fake.press_button(CHAT, mid, "s2", user_id=CHAT)
        await bot.edit_message_reply_markup(CHAT, mid, reply_markup=stop_keyboard("s3"))
        final = await bot.edit_message_text("abc", chat_id=CHAT, message_id=mid)  # drops it too
        assert isinstance(final, telegram.Message) and final.reply_markup is None
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(CHAT, "x", reply_markup=stop_keyboard("x" * 65))
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_reply_markup(CHAT, 99)
        mine = fake.send_user_message(CHAT, "user text")
        with pytest.raises(BadRequest, match="Message can't be edited"):
            await bot.edit_message_reply_markup(CHAT, mine["message_id"],
                                                reply_markup=stop_keyboard())
    (message,) = fake.bot_messages(CHAT)
    keyboard = stop_keyboard().to_dict()
    assert message.markups == [keyboard, keyboard, stop_keyboard("s2").to_dict(), None,
                               stop_keyboard("s3").to_dict(), None]
    assert message.versions == ["a", "ab", "abc"] and message.buttons == []
    assert message.markup is None


# ---------------------------------------------------------------------- webhook delivery


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it gets and answers scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = deque(statuses)  # answered in turn; 200 once they run out
        self.got: list[tuple[dict[str, str], Any]] = []  # (headers, JSON body)
        self.gate: asyncio.Event | None = None  # while set to an unset Event, requests wait
        self.url = ""
        self._arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._arrived:
            self.got.append((dict(request.headers), body))
            self._arrived.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=self.statuses.popleft() if self.statuses else 200)

    def ids(self) -> list[int]:
        return [body["update_id"] for _, body in self.got]

    async def wait_got(self, count: int) -> None:
        async with asyncio.timeout(2.0), self._arrived:
            await self._arrived.wait_for(lambda: len(self.got) >= count)


@asynccontextmanager
async def receiver(*statuses: int) -> AsyncIterator[Receiver]:
    rec = Receiver(list(statuses))
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more


async def test_webhook_posts_update_json_with_secret_header(fake: FakeTelegram) -> None:
    """setWebhook makes the fake POST each update as JSON with the secret header."""
    async with receiver() as rec, make_bot(fake) as bot:
        assert await bot.set_webhook(rec.url, secret_token="s3", max_connections=7)
        sent = fake.send_user_message(CHAT, "hello")
        await fake.wait_for(lambda: fake.webhook_pending() == 0)
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
    ((headers, body),) = rec.got
    assert headers[SECRET_HEADER] == "s3" and headers["Content-Type"] == "application/json"
    assert body == {"update_id": 1, "message": sent}
    assert fake.webhook_deliveries == [WebhookDelivery(1, rec.url, 200)]
    assert (info.url, info.pending_update_count, info.max_connections) == (rec.url, 0, 7)
    assert info.last_error_date is None and info.last_error_message is None


async def test_webhook_round_robin_across_replicas(fake: FakeTelegram) -> None:
    """Several URLs behind one public URL share the updates in turn; setWebhook keeps them."""
    public = "https://bot.example.invalid/hook"  # never contacted: it names the balancer
    async with receiver() as a, receiver() as b, make_bot(fake) as bot:
        fake.deliver_webhooks([a.url, b.url], public_url=public, max_connections=1)
        for replica_secret in ("s1", "s2"):  # each replica registers the public URL at startup
            assert await bot.set_webhook(public, secret_token=replica_secret, max_connections=1)
        for i in range(4):
            fake.send_user_message(CHAT, f"m{i}")
        await fake.wait_for(lambda: fake.webhook_pending() == 0)
        info = await bot.get_webhook_info()
    assert [(d.update_id, d.url) for d in fake.webhook_deliveries] == [
        (1, a.url), (2, b.url), (3, a.url), (4, b.url)]
    assert (a.ids(), b.ids()) == ([1, 3], [2, 4])
    assert {headers[SECRET_HEADER] for headers, _ in a.got + b.got} == {"s2"}
    assert (info.url, info.max_connections) == (public, 1)


async def test_webhook_retries_on_500_and_closed_port(fake: FakeTelegram) -> None:
    """A failed POST is retried on the next URL until one answers 2xx; the last error shows."""
    dead = closed_port_url()
    async with receiver(500) as rec, make_bot(fake) as bot:
        fake.deliver_webhooks([dead, rec.url], "s", spread="first", retry_delay=0.01)
        fake.send_user_message(CHAT, "retry me")
        await fake.wait_for(lambda: fake.webhook_pending() == 0)
        info = await bot.get_webhook_info()
    assert fake.webhook_deliveries == [
        WebhookDelivery(1, dead, "Connection refused"), WebhookDelivery(1, rec.url, 500),
        WebhookDelivery(1, dead, "Connection refused"), WebhookDelivery(1, rec.url, 200)]
    assert info.last_error_message == "Connection refused" and info.last_error_date is not None
    assert rec.ids() == [1, 1]


async def test_webhook_confirms_only_after_2xx(fake: FakeTelegram) -> None:
    """An update stays pending while its POST runs, and a POST that times out is retried."""
    async with receiver(204) as rec:
        rec.gate = asyncio.Event()
        fake.deliver_webhooks([rec.url], timeout=0.1, retry_delay=0.05)
        fake.send_user_message(CHAT, "slow")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 1)
        assert fake.webhook_deliveries[0].outcome == "Read timeout expired"
        fake.webhook_timeout = 5.0  # read by each attempt: the retry may wait at the gate
        assert fake.webhook_pending() == 1
        assert fake.webhook_info()["last_error_message"] == "Read timeout expired"
        await rec.wait_got(2)  # the retry, held at the gate
        assert fake.webhook_pending() == 1
        rec.gate.set()
        await fake.wait_for(lambda: fake.webhook_pending() == 0)
    assert [d.outcome for d in fake.webhook_deliveries] == ["Read timeout expired", 204]


async def test_webhook_max_connections_in_update_id_order(fake: FakeTelegram) -> None:
    """At most max_connections POSTs run at once, started oldest update first."""
    async with receiver() as rec:
        rec.gate = asyncio.Event()
        fake.deliver_webhooks([rec.url], max_connections=2)
        for i in range(5):
            fake.send_user_message(CHAT, f"m{i}")
        await rec.wait_got(2)
        await asyncio.sleep(0.02)
        assert rec.ids() == [1, 2] and fake.webhook_pending() == 5
        assert SECRET_HEADER not in rec.got[0][0]  # no secret was given
        rec.gate.set()
        await fake.wait_for(lambda: fake.webhook_pending() == 0)
    assert sorted(rec.ids()) == [1, 2, 3, 4, 5] and rec.ids()[:2] == [1, 2]


async def test_webhook_duplicate_every(fake: FakeTelegram) -> None:
    """duplicate_every=2 POSTs every even update once more, to another URL, after confirming."""
    async with receiver() as a, receiver() as b:
        fake.deliver_webhooks([a.url, b.url], max_connections=1, duplicate_every=2,
                              duplicate_delay=0.01)
        for i in range(3):
            fake.send_user_message(CHAT, f"m{i}")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 4)
        await asyncio.sleep(0.03)  # no re-delivery of odd updates follows
    deliveries = [(d.update_id, d.url, d.outcome) for d in fake.webhook_deliveries]
    assert deliveries[:2] == [(1, a.url, 200), (2, b.url, 200)]
    assert sorted(deliveries[2:]) == [(2, a.url, 200), (3, a.url, 200)]  # either order
    assert [body for _, body in a.got if body["update_id"] == 2] == [b.got[0][1]]


async def test_webhook_allowed_updates(fake: FakeTelegram) -> None:
    """allowed_updates from setWebhook decides which updates are delivered at all."""
    async with receiver() as rec, make_bot(fake) as bot:
        await bot.set_webhook(rec.url, allowed_updates=["callback_query"])
        fake.send_user_message(CHAT, "not wanted")
        callback = {"id": "cb1", "chat_instance": "ci", "data": "x",
                    "from": {"id": CHAT, "is_bot": False, "first_name": "Ann"}}
        fake.push_update({"callback_query": callback})
        await fake.wait_for(lambda: bool(fake.webhook_deliveries))
        info = await bot.get_webhook_info()
    assert rec.ids() == [2] and rec.got[0][1]["callback_query"]["data"] == "x"
    assert info.allowed_updates == ("callback_query",) and info.pending_update_count == 0


async def test_delete_webhook_stops_delivery(fake: FakeTelegram) -> None:
    """deleteWebhook stops delivery and hands the pending updates back to getUpdates."""
    async with receiver(*[500] * 1000) as rec, make_bot(fake) as bot:
        await bot.set_webhook(rec.url)
        fake.webhook_retry_delay = 0.005
        fake.send_user_message(CHAT, "stuck")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) >= 2)
        assert await bot.delete_webhook()
        attempts = len(fake.webhook_deliveries)
        await asyncio.sleep(0.05)
        assert len(fake.webhook_deliveries) == attempts
        assert len(rec.got) in (attempts, attempts + 1)  # one POST may have been on the wire
        (update,) = await bot.get_updates()
        assert update.update_id == 1 and (await bot.get_webhook_info()).url == ""

        await bot.set_webhook(rec.url)  # drop_pending_updates empties the queue on the way out
        await fake.wait_for(lambda: len(fake.webhook_deliveries) > attempts)
        assert await bot.delete_webhook(drop_pending_updates=True)
        assert await bot.get_updates() == ()


async def test_webhook_stop_ends_delivery_and_refuses_other_hosts() -> None:
    """Only loopback URLs are contacted, and stop() ends every delivery task."""
    async with FakeTelegram() as fake, make_bot(fake) as bot:
        await bot.set_webhook("https://example.invalid/hook")
        fake.send_user_message(CHAT, "never leaves the machine")
        await fake.wait_for(lambda: bool(fake.webhook_deliveries))
        assert str(fake.webhook_deliveries[0].outcome).startswith("Refused by the fake")
        assert fake.webhook_pending() == 1
    left = [t for t in asyncio.all_tasks() if t.get_name().startswith("fake-telegram-webhook")]
    assert left == []
