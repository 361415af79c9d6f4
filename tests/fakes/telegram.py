"""An in-process fake of the Telegram Bot API that speaks the real wire format.

The real python-telegram-bot stack runs against it unchanged, on the test's own event loop::

    async with FakeTelegram() as fake:
        bot = telegram.Bot(BOT_TOKEN, base_url=fake.api_url, base_file_url=fake.file_url)
        fake.send_user_message(42, "/start")
        await fake.wait_for(lambda: bool(fake.bot_messages(42)))

Chats, messages, drafts, files and pending updates live in plain dicts. ``parse_mode`` markup
is recorded in :attr:`Call.params` but not parsed.

The test plays the user: :meth:`FakeTelegram.send_user_message` writes to the bot,
:meth:`FakeTelegram.press_button` presses an inline button of a bot message (a
``callback_query``; answers land in :attr:`FakeTelegram.callback_answers`) and
:meth:`FakeTelegram.stop_generation` presses the stop button of a streamed draft (a
``stopped_message_generation`` update)::

    fake.press_button(42, message_id, "stop:7", user_id=42)
    await fake.wait_for(lambda: bool(fake.callback_answers))

Updates go out by ``getUpdates`` until a webhook is set, by the bot (``setWebhook``) or by the
test (:meth:`FakeTelegram.deliver_webhooks`, which may name several URLs: replicas behind one
load balancer, served round-robin). Then, as on Telegram, ``getUpdates`` answers 409 and each
pending update is POSTed as JSON, with ``X-Telegram-Bot-Api-Secret-Token`` if a secret was set,
up to ``max_connections`` at a time, started in ``update_id`` order. An update stays pending
until a POST answers 2xx; a failure (other status, connection error, timeout) is retried on the
next URL after a short, slowly growing delay. Only loopback URLs are contacted: any other host
fails every attempt. Every attempt is recorded in :attr:`FakeTelegram.webhook_deliveries`;
``deleteWebhook`` stops delivery and hands what is still pending back to ``getUpdates``::

    fake.deliver_webhooks([replica_a.url, replica_b.url], "s3cret", duplicate_every=5)
    fake.send_user_message(42, "hi")
    await fake.wait_for(lambda: fake.webhook_pending() == 0)
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import aiohttp
from aiohttp import web
from yarl import URL

BOT_TOKEN = "123456:TEST-fake-token-not-real"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
QUERY_INVALID = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
# Always plain strings on the wire, even when they look like JSON ("123", "true").
_STRING_PARAMS = frozenset({"text", "caption", "parse_mode", "url", "secret_token", "file_id",
                            "action", "title", "description", "callback_query_id", "emoji"})
# Methods that post, change or delete messages: the only ones RateLimits counts. Drafts are not
# messages: Telegram documents no limit for them, so the fake gives them a bucket of their own.
MESSAGE_OPS = frozenset({
    "sendmessage", "editmessagetext", "editmessagecaption",
    "editmessagereplymarkup", "deletemessage", "deletemessages", "sendphoto", "senddocument",
    "sendmediagroup", "sendaudio", "sendvideo", "sendvoice", "sendanimation", "sendsticker",
    "copymessage", "forwardmessage",
})
_BUTTON_ACTIONS = frozenset({
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
})
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}\b")
_GROUP_USER_ID = 424242  # default sender of user messages in group chats
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class RateLimits:
    per_chat_per_second: float = 1.0  # token bucket refill rate, per chat
    per_chat_burst: int = 3  # token bucket size, per chat
    per_group_per_minute: int = 20  # chats with a negative id, sliding 60 s window
    global_per_second: int = 30  # all chats together, sliding 1 s window
    drafts_per_chat_per_second: float = 4.0  # an assumption (undocumented): drafts' own bucket
    drafts_per_chat_burst: int = 5


@dataclass
class Call:
    """One recorded API request; ``status`` stays 0 while it runs (long polls)."""

    method: str  # as sent, e.g. "sendMessage"
    params: dict[str, Any]  # decoded
    at: float  # clock() when received
    status: int = 0  # HTTP status answered; 499 if the client went away first
    result: Any = None  # "result", or the error description


@dataclass
class SentMessage:
    """A message in a chat (from the bot or pushed by the test), as the server holds it now."""

    chat_id: int
    message_id: int
    text: str  # the caption for media messages
    entities: list[dict[str, Any]]
    from_bot: bool
    versions: list[str]  # every text it has had, first send included
    message_thread_id: int | None = None
    reply_to_message_id: int | None = None
    deleted: bool = False
    # The inline keyboard after the send and after every edit (text or markup); None: none.
    markups: list[dict[str, Any] | None] = field(default_factory=list)

    @property
    def markup(self) -> dict[str, Any] | None:
        """The inline keyboard it shows now."""
        return self.markups[-1] if self.markups else None

    @property
    def buttons(self) -> list[str]:
        """The ``callback_data`` of every button it shows now, row by row."""
        return _callback_data(self.markup)


@dataclass
class Draft:
    """One accepted sendMessageDraft call."""

    chat_id: int
    draft_id: int
    text: str
    entities: list[dict[str, Any]]
    message_thread_id: int | None
    at: float
    can_stop: bool = False  # the user sees a stop button (stopped_message_generation)
    keep_on_stop: bool = False  # a stopped draft stays in the chat as a message


@dataclass
class Upload:
    """A file part of a multipart request, as it appears in :attr:`Call.params`."""

    filename: str | None
    content_type: str
    data: bytes = field(repr=False)


class WebhookDelivery(NamedTuple):
    """One POST of an update to a webhook URL (re-deliveries and retries included)."""

    update_id: int
    url: str
    outcome: int | str  # the HTTP status answered, or why there was none


@dataclass
class _WebhookRun:
    """Delivery to one set of URLs; replaced whenever the set changes."""

    urls: list[str]
    public_url: str  # a setWebhook with this URL (or one of urls) keeps the run going
    in_flight: set[int] = field(default_factory=set)  # update ids being delivered
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # deliveries, re-deliveries
    next_index: int = 0  # round-robin position in urls


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes = field(repr=False)


@dataclass
class _Fault:
    method: str  # lower case
    error_code: int
    description: str
    retry_after: int | None
    times: int
    chat_id: int | None


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def _error_body(code: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def _decode(name: str, value: Any) -> Any:
    """Non-string values arrive JSON-encoded; a few parameters are always strings."""
    if name in _STRING_PARAMS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def _read_params(request: web.Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json() if request.body_exists else {}
        if not isinstance(body, dict):
            raise ValueError("request body must be a JSON object")
        raw.update(body)
    elif request.method == "POST":  # form-urlencoded or multipart
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                raw[name] = Upload(value.filename, value.content_type, value.file.read())
            else:
                raw[name] = value
    return {name: _decode(name, value) for name, value in raw.items()}


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _int_param(params: dict[str, Any], name: str) -> int:
    if params.get(name) in (None, ""):
        raise _ApiError(400, f"Bad Request: {name} is empty")
    value = _as_int(params[name])
    if value is None:
        raise _ApiError(400, f"Bad Request: invalid {name} specified")
    return value


def _chat_id(params: dict[str, Any]) -> int:
    if params.get("chat_id") in (None, ""):
        raise _ApiError(400, "Bad Request: chat_id is empty")
    value = _as_int(params["chat_id"])
    if value is None:  # "@channelusername" is not supported
        raise _ApiError(400, "Bad Request: chat not found")
    return value


def _text(params: dict[str, Any], *, allow_empty: bool = False) -> str:
    text = str(params.get("text") or "")
    if not allow_empty and not text.strip():
        raise _ApiError(400, "Bad Request: message text is empty")
    if utf16_len(text) > MAX_TEXT_LENGTH:
        raise _ApiError(400, "Bad Request: message is too long")
    return text


def _bool_param(params: dict[str, Any], name: str) -> bool:
    """Booleans arrive as JSON true/false, or as strings when sent through api_kwargs."""
    value = params.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value) if isinstance(value, bool | int) else False


def _inline_markup(params: dict[str, Any]) -> dict[str, Any] | None:
    """The inline keyboard in ``reply_markup``, validated; None if there is none (or it is empty)."""
    markup = params.get("reply_markup")
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _ApiError(400, "Bad Request: field \"inline_keyboard\" must be an Array of Array")
    prefix = "Bad Request: can't parse inline keyboard button: "
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _ApiError(400, prefix + "Field \"text\" must be of type String")
            if not _BUTTON_ACTIONS & button.keys():
                raise _ApiError(400, prefix + "Text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup if any(rows) else None


def _callback_data(markup: dict[str, Any] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [str(b["callback_data"]) for row in rows for b in row if "callback_data" in b]


def _entities(raw: Any, text: str) -> list[dict[str, Any]]:
    if raw is None or raw == "":
        return []
    prefix = "Bad Request: can't parse entities: "
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise _ApiError(400, prefix + "entities must be an array of MessageEntity")
    size = utf16_len(text)
    for entity in raw:
        offset, length = _as_int(entity.get("offset")), _as_int(entity.get("length"))
        if not entity.get("type") or offset is None or length is None or min(offset, length) < 0:
            raise _ApiError(400, prefix + f"invalid entity {entity!r}")
        if offset + length > size:
            raise _ApiError(400, prefix + "entity beyond the end of text")
    return raw


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command and mention entities Telegram attaches to a user's text."""
    found: list[dict[str, Any]] = []
    if command := _COMMAND_RE.match(text):
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for mention in _MENTION_RE.finditer(text):
        offset = utf16_len(text[: mention.start()])
        found.append({"type": "mention", "offset": offset, "length": utf16_len(mention.group())})
    return found


class _RateLimiter:
    """Token bucket per chat, sliding 60 s window per group chat, sliding 1 s window overall."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, when)
        self._draft_buckets: dict[int, tuple[float, float]] = {}
        self._group_ops: dict[int, deque[float]] = {}
        self._global_ops: deque[float] = deque()

    def acquire_draft(self, chat_id: int, now: float) -> float:
        """0.0 if a draft update may go ahead (and counts it), else seconds until it would."""
        rate, burst = self.limits.drafts_per_chat_per_second, float(self.limits.drafts_per_chat_burst)
        tokens, when = self._draft_buckets.get(chat_id, (burst, now))
        tokens = min(burst, tokens + (now - when) * rate)
        wait = (1 - tokens) / rate if tokens < 1 else 0.0
        self._draft_buckets[chat_id] = (tokens if wait > 0 else tokens - 1, now)
        return wait

    def acquire(self, chat_id: int | None, now: float) -> float:
        """0.0 if the op may go ahead (and counts it), else seconds until it would be allowed."""
        lim, waits = self.limits, [0.0]
        tokens = float(lim.per_chat_burst)
        if chat_id is not None:
            tokens, when = self._buckets.get(chat_id, (tokens, now))
            tokens = min(float(lim.per_chat_burst), tokens + (now - when) * lim.per_chat_per_second)
            if tokens < 1:
                waits.append((1 - tokens) / lim.per_chat_per_second)
        group = self._group_ops.setdefault(chat_id, deque()) if chat_id and chat_id < 0 else None
        windows = [(self._global_ops, 1.0, lim.global_per_second)]
        if group is not None:
            windows.append((group, 60.0, lim.per_group_per_minute))
        for window, span, cap in windows:
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= cap:
                waits.append(window[0] + span - now)
        wait = max(waits)
        if chat_id is not None:
            self._buckets[chat_id] = (tokens if wait > 0 else tokens - 1, now)
        if wait <= 0:
            for window, _, _ in windows:
                window.append(now)
        return wait


class FakeTelegram:
    """A fake Bot API server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        token: str = BOT_TOKEN,
        *,
        bot_id: int = 123456,
        username: str = "yuanqi_test_bot",
        clock: Callable[[], float] = time.monotonic,
        limits: RateLimits | None = None,
    ) -> None:
        self.token, self.bot_id, self.username = token, bot_id, username
        self.clock, self.limits = clock, limits
        self.base_url = self.api_url = self.file_url = ""
        self.calls: list[Call] = []
        self.admins: dict[int, set[int]] = {}  # chat -> users getChatMember calls administrator
        self.drafts: dict[int, list[Draft]] = {}
        self.drafts_supported = True  # False: sendMessageDraft answers 404, as an older server
        self.callback_answers: list[dict[str, Any]] = []  # {"id", "text", "show_alert"} each
        self.left_chats: list[int] = []
        self.commands: list[dict[str, Any]] = []  # from the last setMyCommands
        self.webhook_url = ""  # as getWebhookInfo reports it; "" while updates go to getUpdates
        self.webhook_secret: str | None = None
        # Webhook delivery settings; setWebhook sets the first, deliver_webhooks all of them.
        self.webhook_max_connections = 40  # deliveries in flight at once
        self.webhook_timeout = 3.0  # seconds a POST may take before it counts as failed
        self.webhook_retry_delay = 0.2  # seconds before the first retry; x1.5 per retry, to 10x
        self.webhook_duplicate_every = 0  # N: updates with update_id % N == 0 are re-delivered
        self.webhook_duplicate_delay = 0.05  # seconds after confirmation
        self.webhook_spread: Literal["round_robin", "first"] = "round_robin"
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_last_error: tuple[int, str] | None = None  # (unix time, message)
        # From the last getUpdates or setWebhook that gave them; shared, as on Telegram.
        self.allowed_updates: list[str] = []
        self.violations = 0  # message ops for a chat while a retry_after for it was in force
        self.too_many_requests = 0  # 429s answered by the limiter (not by fail_next)
        self._limiter = _RateLimiter(limits) if limits else None
        self._blocked_until: dict[int, float] = {}
        self._faults: list[_Fault] = []
        self._hang_ups: list[_Fault] = []  # calls carried out, then left unanswered
        self._messages: dict[int, dict[int, SentMessage]] = {}
        self._raw: dict[tuple[int, int], dict[str, Any]] = {}  # message dicts as sent out
        self._next_message_id: dict[int, int] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._callback_queries: dict[str, bool] = {}  # id issued by press_button -> answered
        self._updates: list[dict[str, Any]] = []  # not yet confirmed by a getUpdates offset
        self._next_update_id = 1
        self._changed = asyncio.Event()  # set and replaced on every change, see _notify
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._webhook_run: _WebhookRun | None = None
        self._webhook_tasks: set[asyncio.Task[None]] = set()  # delivery loops, old ones included

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]  # the site's bound server socket
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.base_url}/bot"
        self.file_url = f"{self.base_url}/file/bot"

    async def stop(self) -> None:
        self._closing = True  # running long polls answer at once
        self._notify()
        self._end_webhook_run()
        if self._webhook_tasks:  # each ends its deliveries and closes its session first
            await asyncio.wait(self._webhook_tasks)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ inspection

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()
                and (chat_id is None or _as_int(c.params.get("chat_id")) == chat_id)]

    def messages(self, chat_id: int) -> list[SentMessage]:
        chat = self._messages.get(chat_id, {})
        return [chat[message_id] for message_id in sorted(chat)]

    def bot_messages(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.messages(chat_id) if m.from_bot and not m.deleted]

    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Yuanqi Test Bot",
                "username": self.username}

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0
    ) -> None:
        """Return once ``predicate()`` holds; it is re-checked after every call and update."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    if predicate():
                        return
                    await changed.wait()
        except TimeoutError:
            recent = "\n  ".join(map(_describe, self.calls[-10:])) or "(no calls)"
            raise AssertionError(f"not met within {timeout}s; last calls:\n  {recent}") from None

    def _notify(self) -> None:
        # An Event swapped on every change works like Condition.notify_all() but can be
        # fired from synchronous code (push_update) without holding a lock.
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ injecting updates

    def push_update(self, update: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({**update, "update_id": update_id})
        self._notify()
        return update_id

    def send_user_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Ann",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        chat_type: str = "private",
        chat_title: str | None = None,
        message_thread_id: int | None = None,
        is_topic_message: bool = False,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        caption: str | None = None,
        photo: list[dict[str, Any]] | None = None,
        media_group_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if user_id is None:
            user_id = chat_id if chat_type == "private" else _GROUP_USER_ID
        optional = {"last_name": last_name, "username": username, "language_code": language_code}
        user = {"id": user_id, "is_bot": False, "first_name": first_name,
                **{k: v for k, v in optional.items() if v is not None}}
        self._users[user_id] = user
        if chat_type == "private":
            names = ("first_name", "last_name", "username")
            chat = {"id": chat_id, "type": "private", **{k: user[k] for k in names if k in user}}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": chat_title or f"Chat {chat_id}"}
            if is_topic_message:
                chat["is_forum"] = True
        self._chats[chat_id] = chat
        msg: dict[str, Any] = {"message_id": self._new_message_id(chat_id),
                               "date": int(time.time()), "chat": chat, "from": user}
        if message_thread_id is not None:
            msg["message_thread_id"] = message_thread_id
        if is_topic_message:
            msg["is_topic_message"] = True
        if reply_to_message_id is not None:
            msg["reply_to_message"] = self._reply_stub(chat_id, reply_to_message_id)
        if text is not None:
            msg["text"] = text
            if found := entities if entities is not None else _auto_entities(text):
                msg["entities"] = found
        if caption is not None:
            msg["caption"] = caption
            if found := _auto_entities(caption):
                msg["caption_entities"] = found
        if photo is not None:
            msg["photo"] = photo
        if media_group_id is not None:
            msg["media_group_id"] = media_group_id
        msg.update(extra or {})
        self._store(msg, from_bot=False)
        self.push_update({"message": msg})
        return msg

    def press_button(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int,
        first_name: str = "Ann",
        language_code: str | None = None,
        chat_type: str | None = None,
    ) -> dict[str, Any]:
        """The user presses the inline button with ``callback_data == data``: a callback_query.

        The update carries the message as the bot last showed it; ``chat_type`` overrides the
        type of its chat. A missing message or button is a mistake in the test (AssertionError).
        Returns the callback query; its ``id`` is what answerCallbackQuery must name.
        """
        stored = self._messages.get(chat_id, {}).get(message_id)
        assert stored is not None and not stored.deleted, (
            f"press_button: no message {message_id} in chat {chat_id}")
        assert data in stored.buttons, (
            f"press_button: message {message_id} has no button {data!r} (it has {stored.buttons})")
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code is not None:
            user["language_code"] = language_code
        self._users.setdefault(user_id, user)
        message = copy.deepcopy(self._raw[chat_id, message_id])
        if chat_type is not None:
            message["chat"]["type"] = chat_type
        query_id = str(4_000_000_000_000_000 + 7919 * (len(self._callback_queries) + 1))
        self._callback_queries[query_id] = False
        query = {"id": query_id, "from": user, "message": message,
                 "chat_instance": str(-7_000_000_000 - abs(chat_id)), "data": data}
        self.push_update({"callback_query": query})
        return query

    def stop_generation(
        self, chat_id: int, draft_id: int, *, thread_id: int | None = None
    ) -> dict[str, Any]:
        """The user presses the stop button of a streamed draft: a stopped_message_generation.

        Like every update it is only delivered if ``allowed_updates`` names it (or is empty).
        """
        assert chat_id > 0, "drafts (and their stop button) exist in private chats only"
        chat = copy.deepcopy(self._chats.get(chat_id) or self._chat(chat_id))
        stopped: dict[str, Any] = {"chat": chat, "draft_id": draft_id}
        if thread_id is not None:
            stopped["message_thread_id"] = thread_id
        self.push_update({"stopped_message_generation": stopped})
        return stopped

    # ------------------------------------------------------------------ files

    def add_file(self, data: bytes, *, file_path: str | None = None) -> str:
        n = len(self._files) + 1
        file_id = f"AgACAgFAKE-{n:04d}"
        self._files[file_id] = _StoredFile(
            file_id, f"AQADFAKE{n}", file_path or f"photos/file_{n}.jpg", data
        )
        return file_id

    def photo_sizes(self, data: bytes, *, sizes: int = 3) -> list[dict[str, Any]]:
        result = []
        for i in range(sizes):  # smallest first; the largest holds all of data
            part = data[: len(data) * (i + 1) // sizes]
            stored = self._files[self.add_file(part)]
            width = 1280 >> (sizes - 1 - i)
            result.append({"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                           "width": width, "height": width * 3 // 4, "file_size": len(part)})
        return result

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        fault = _Fault(method.lower(), error_code, description, retry_after, times, chat_id)
        self._faults.append(fault)

    def hang_up_next(self, method: str, *, times: int = 1, chat_id: int | None = None) -> None:
        """Carry out the next call(s) of ``method``, then close the connection without answering.

        The client sees the connection dropped (httpx ``RemoteProtocolError``), as after a read
        timeout: it cannot tell whether the call took effect, and here it did.
        """
        self._hang_ups.append(_Fault(method.lower(), 0, "", None, times, chat_id))

    def _take_hang_up(self, method: str, params: dict[str, Any]) -> bool:
        chat_id = _as_int(params.get("chat_id"))
        for fault in self._hang_ups:
            if fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self._hang_ups.remove(fault)
                return True
        return False

    # ------------------------------------------------------------------ webhook delivery

    def deliver_webhooks(
        self,
        urls: list[str],
        secret: str | None = None,
        *,
        public_url: str | None = None,
        max_connections: int = 40,
        allowed_updates: list[str] | None = None,
        duplicate_every: int = 0,
        spread: Literal["round_robin", "first"] = "round_robin",
        timeout: float = 3.0,
        retry_delay: float = 0.2,
        duplicate_delay: float = 0.05,
    ) -> None:
        """Deliver updates by webhook to ``urls`` (replicas behind one load balancer).

        ``public_url`` (default ``urls[0]``) is what getWebhookInfo reports; a later setWebhook
        with it, or with one of ``urls``, only changes the settings it carries. ``spread="first"``
        sends every first attempt to ``urls[0]`` (retries move on). With ``duplicate_every=N``
        each update whose ``update_id`` is a multiple of N is POSTed once more, to the next URL,
        ``duplicate_delay`` seconds after it was confirmed. ``allowed_updates=None`` keeps the
        current setting.
        """
        if not urls:
            raise ValueError("deliver_webhooks needs at least one URL")
        self.webhook_secret = secret
        self.webhook_max_connections = max(1, max_connections)
        if allowed_updates is not None:
            self.allowed_updates = list(allowed_updates)
        self.webhook_duplicate_every, self.webhook_spread = duplicate_every, spread
        self.webhook_timeout, self.webhook_retry_delay = timeout, retry_delay
        self.webhook_duplicate_delay = duplicate_delay
        self._start_webhook_run(list(urls), public_url or urls[0])

    def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        """What deleteWebhook does: stop delivery; what is pending goes to getUpdates again."""
        self._end_webhook_run()
        self.webhook_url, self.webhook_secret, self.webhook_last_error = "", None, None
        if drop_pending_updates:
            self._updates.clear()
        self._notify()

    def webhook_pending(self) -> int:
        """Updates not yet confirmed: getWebhookInfo's ``pending_update_count``."""
        return len(self._pending())

    def webhook_info(self) -> dict[str, Any]:
        """The WebhookInfo that getWebhookInfo answers."""
        info: dict[str, Any] = {"url": self.webhook_url, "has_custom_certificate": False,
                                "pending_update_count": self.webhook_pending()}
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
        if self.webhook_last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        if self.allowed_updates:
            info["allowed_updates"] = list(self.allowed_updates)
        return info

    def _start_webhook_run(self, urls: list[str], public_url: str) -> None:
        self._end_webhook_run()
        self.webhook_url = public_url
        if self._closing:
            return
        run = self._webhook_run = _WebhookRun(urls, public_url)
        task = asyncio.create_task(self._webhook_loop(run), name="fake-telegram-webhook")
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)
        self._notify()

    def _end_webhook_run(self) -> None:
        # Synchronous, so that no delivery of the old run can confirm anything afterwards: a
        # cancelled task never resumes normally. stop() awaits the loops, which await the rest.
        run, self._webhook_run = self._webhook_run, None
        if run is not None:
            for task in run.tasks:
                task.cancel()
        for task in self._webhook_tasks:
            task.cancel()

    async def _webhook_loop(self, run: _WebhookRun) -> None:
        """Start a delivery for each pending update, oldest first, up to max_connections."""
        connector = aiohttp.TCPConnector(limit=0, force_close=True)  # no stale keep-alives
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                while not self._closing:
                    changed = self._changed
                    for update in self._pending():
                        if len(run.in_flight) >= self.webhook_max_connections:
                            break
                        if update["update_id"] not in run.in_flight:
                            run.in_flight.add(update["update_id"])
                            self._spawn(run, self._deliver(run, session, update))
                    await changed.wait()
            finally:
                for task in run.tasks:
                    task.cancel()
                await asyncio.gather(*run.tasks, return_exceptions=True)

    @staticmethod
    def _spawn(run: _WebhookRun, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name="fake-telegram-webhook-delivery")
        run.tasks.add(task)
        task.add_done_callback(run.tasks.discard)

    async def _deliver(
        self, run: _WebhookRun, session: aiohttp.ClientSession, update: dict[str, Any]
    ) -> None:
        """POST one update until a URL answers 2xx, then confirm it (and maybe re-deliver it)."""
        update_id, delay = update["update_id"], self.webhook_retry_delay
        if self.webhook_spread == "first":
            index = 0
        else:
            index, run.next_index = run.next_index, run.next_index + 1
        try:
            while True:
                outcome = await self._post_update(session, run.urls[index % len(run.urls)], update)
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, self.webhook_retry_delay * 10)
                index += 1
            self._updates = [u for u in self._updates if u["update_id"] != update_id]
        finally:
            run.in_flight.discard(update_id)
            self._notify()
        every = self.webhook_duplicate_every
        if every > 0 and update_id % every == 0:
            await asyncio.sleep(self.webhook_duplicate_delay)
            await self._post_update(session, run.urls[(index + 1) % len(run.urls)], update)

    async def _post_update(
        self, session: aiohttp.ClientSession, url: str, update: dict[str, Any]
    ) -> int | str:
        """One attempt, recorded in webhook_deliveries: the status answered, or the error."""
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[SECRET_HEADER] = self.webhook_secret
        outcome: int | str
        reason, target = "", URL(url)
        if target.scheme not in ("http", "https") or target.host not in _LOOPBACK_HOSTS:
            outcome = "Refused by the fake: webhooks are only delivered to loopback hosts"
        else:
            try:
                async with session.post(url, data=json.dumps(update), headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                                        allow_redirects=False) as response:
                    await response.read()
                    outcome = response.status
                    reason = response.reason or ""
            except TimeoutError:
                outcome = "Read timeout expired"
            except aiohttp.ClientConnectorError:
                outcome = "Connection refused"
            except aiohttp.ClientError as exc:
                outcome = f"Connection failed: {exc!r}"
        self.webhook_deliveries.append(WebhookDelivery(update["update_id"], url, outcome))
        if isinstance(outcome, str):
            self.webhook_last_error = (int(time.time()), outcome)
        elif not 200 <= outcome < 300:
            message = f"Wrong response from the webhook: {outcome} {reason}".rstrip()
            self.webhook_last_error = (int(time.time()), message)
        self._notify()
        return outcome

    # ------------------------------------------------------------------ HTTP plumbing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            token, _, file_path = path.removeprefix("/file/bot").partition("/")
            return self._download(token, file_path)
        if not path.startswith("/bot"):
            return web.json_response(_error_body(404, "Not Found"), status=404)
        token, _, method = path.removeprefix("/bot").partition("/")
        try:
            params = await _read_params(request)
        except ValueError as exc:  # includes json.JSONDecodeError
            return web.json_response(_error_body(400, f"Bad Request: {exc}"), status=400)
        call = Call(method, params, self.clock())
        self.calls.append(call)
        self._notify()
        try:
            if token != self.token:
                raise _ApiError(401, "Unauthorized")
            result = await self._answer(method.lower(), params, call.at)
            body: dict[str, Any] = {"ok": True, "result": result}
            call.status, call.result = 200, copy.deepcopy(result)
            if self._take_hang_up(method.lower(), params) and request.transport is not None:
                request.transport.close()  # done, but the client never hears so
        except _ApiError as exc:
            body = _error_body(exc.code, exc.description, exc.retry_after)
            call.status, call.result = exc.code, exc.description
        except asyncio.CancelledError:  # the client hung up (e.g. PTB cancelled its long poll)
            call.status, call.result = 499, "client closed request"
            raise
        except Exception as exc:  # a bug in the fake: answer 500 so that the test notices
            body = _error_body(500, f"Internal Server Error: {exc!r}")
            call.status, call.result = 500, body["description"]
        finally:
            self._notify()
        return web.json_response(body, status=call.status)

    async def _answer(self, method: str, params: dict[str, Any], now: float) -> Any:
        chat_id = _as_int(params.get("chat_id"))
        message_op = method in MESSAGE_OPS
        blocked = chat_id is not None and now < self._blocked_until.get(chat_id, -math.inf)
        if message_op and blocked:
            self.violations += 1
        for fault in self._faults:
            if fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                if fault.retry_after is not None and chat_id is not None:
                    self._block(chat_id, now + fault.retry_after)
                raise _ApiError(fault.error_code, fault.description, fault.retry_after)
        handler: Callable[[dict[str, Any]], Awaitable[Any]] | None = (
            getattr(self, f"_api_{method}", None) if method.isalnum() else None
        )
        if handler is None:
            raise _ApiError(404, "Not Found: method not found")
        if method == "sendmessagedraft" and not self.drafts_supported:
            raise _ApiError(404, "Not Found")  # an older server: no such method
        limiter = self._limiter if method == "sendmessagedraft" and chat_id is not None else None
        if limiter is not None and chat_id is not None and (wait := limiter.acquire_draft(chat_id, now)) > 0:
            retry_after = max(1, math.ceil(wait - 1e-9))
            self.too_many_requests += 1
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        if message_op and self._limiter is not None:
            if blocked and chat_id is not None:
                wait = self._blocked_until[chat_id] - now
            else:
                wait = self._limiter.acquire(chat_id, now)
            if wait > 0:
                retry_after = max(1, math.ceil(wait - 1e-9))
                self.too_many_requests += 1
                if chat_id is not None:
                    self._block(chat_id, now + retry_after)
                raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        return await handler(params)

    def _block(self, chat_id: int, until: float) -> None:
        self._blocked_until[chat_id] = max(until, self._blocked_until.get(chat_id, -math.inf))

    def _download(self, token: str, file_path: str) -> web.StreamResponse:
        if token != self.token:
            return web.json_response(_error_body(401, "Unauthorized"), status=401)
        for stored in self._files.values():
            if stored.file_path == file_path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.json_response(_error_body(404, "Not Found: file not found"), status=404)

    # ------------------------------------------------------------------ messages

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1000)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Ann"}
        return {"id": chat_id, "type": "supergroup", "title": f"Chat {chat_id}"}

    def _store(self, msg: dict[str, Any], *, from_bot: bool) -> None:
        chat_id, message_id = msg["chat"]["id"], msg["message_id"]
        text = msg.get("text", msg.get("caption", ""))
        entities = list(msg.get("entities", msg.get("caption_entities", [])))
        reply_id = msg.get("reply_to_message", {}).get("message_id")
        self._messages.setdefault(chat_id, {})[message_id] = SentMessage(
            chat_id, message_id, text, entities, from_bot, [text],
            msg.get("message_thread_id"), reply_id, markups=[msg.get("reply_markup")],
        )
        self._raw[chat_id, message_id] = msg

    def _reply_stub(self, chat_id: int, message_id: int) -> dict[str, Any]:
        raw = self._raw.get((chat_id, message_id))
        if raw is None:
            return {"message_id": message_id, "date": int(time.time()), "chat": self._chat(chat_id)}
        return {k: copy.deepcopy(v) for k, v in raw.items() if k != "reply_to_message"}

    def _live(self, chat_id: int, message_id: int, missing: str) -> SentMessage:
        stored = self._messages.get(chat_id, {}).get(message_id)
        if stored is None or stored.deleted:
            raise _ApiError(400, f"Bad Request: {missing}")
        return stored

    def _bot_message(self, params: dict[str, Any], chat_id: int) -> dict[str, Any]:
        msg: dict[str, Any] = {"message_id": 0, "date": int(time.time()),
                               "chat": self._chat(chat_id), "from": self.bot_user()}
        if thread_id := _as_int(params.get("message_thread_id")):
            msg["message_thread_id"] = thread_id
        reply = params.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else {}
        reply_id = _as_int(reply.get("message_id", params.get("reply_to_message_id")))
        if reply_id is not None:
            if (chat_id, reply_id) in self._raw:
                msg["reply_to_message"] = self._reply_stub(chat_id, reply_id)
            elif not reply.get("allow_sending_without_reply",
                               params.get("allow_sending_without_reply")):
                raise _ApiError(400, "Bad Request: message to be replied not found")
        if markup := _inline_markup(params):
            msg["reply_markup"] = markup
        msg["message_id"] = self._new_message_id(chat_id)  # only once the request is valid
        return msg

    # ------------------------------------------------------------------ API methods
    # _api_<lower-case method name>(params) -> result; raise _ApiError to answer an error.

    async def _api_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.bot_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    async def _api_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                 " use deleteWebhook to delete the webhook first")
        offset = _as_int(params.get("offset")) or 0
        limit = min(max(_as_int(params.get("limit")) or 100, 1), 100)
        timeout = params.get("timeout")
        timeout = float(timeout) if isinstance(timeout, int | float) else 0.0
        if isinstance(params.get("allowed_updates"), list):
            self.allowed_updates = params["allowed_updates"]
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset > 0:  # confirms every update before it
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        try:
            async with asyncio.timeout(timeout):
                while not self._pending() and not self._closing:
                    await self._changed.wait()
        except TimeoutError:
            pass
        return self._pending()[:limit]

    def _pending(self) -> list[dict[str, Any]]:
        if allowed := set(self.allowed_updates):  # Telegram would not even create the others
            self._updates = [u for u in self._updates if allowed & u.keys()]
        return self._updates

    async def _api_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, text = _chat_id(params), _text(params)
        entities = _entities(params.get("entities"), text)
        msg = self._bot_message(params, chat_id)
        msg["text"] = text
        if entities:
            msg["entities"] = entities
        self._store(msg, from_bot=True)
        return msg

    def _editable(self, params: dict[str, Any]) -> tuple[SentMessage, dict[str, Any]]:
        """The bot's message an edit names (as held, and as raw JSON), or the error Telegram gives."""
        if params.get("chat_id") is None:  # inline messages are not supported
            raise _ApiError(400, "Bad Request: message to edit not found")
        chat_id = _chat_id(params)
        stored = self._live(chat_id, _int_param(params, "message_id"), "message to edit not found")
        if not stored.from_bot:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return stored, self._raw[chat_id, stored.message_id]

    async def _api_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        stored, raw = self._editable(params)
        if "text" not in raw:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text = _text(params)
        entities = _entities(params.get("entities"), text)
        markup = _inline_markup(params)  # none given: the keyboard goes, as on Telegram
        if (text, entities, markup) == (stored.text, stored.entities, raw.get("reply_markup")):
            raise _ApiError(400, NOT_MODIFIED)
        stored.text, stored.entities = text, list(entities)
        stored.versions.append(text)
        stored.markups.append(markup)
        for key, value in (("entities", entities), ("reply_markup", markup)):
            raw.pop(key, None)
            if value:
                raw[key] = value
        raw.update(text=text, edit_date=int(time.time()))
        return raw

    async def _api_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        stored, raw = self._editable(params)
        markup = _inline_markup(params)  # none (or an empty one) removes the keyboard
        if markup == raw.get("reply_markup"):
            raise _ApiError(400, NOT_MODIFIED)
        stored.markups.append(markup)
        raw.pop("reply_markup", None)
        if markup:
            raw["reply_markup"] = markup
        return raw

    async def _api_sendmessagedraft(self, params: dict[str, Any]) -> bool:
        chat_id = _chat_id(params)
        if chat_id <= 0:  # drafts exist in private chats only
            raise _ApiError(400, "Bad Request: chat not found")
        if (draft_id := _int_param(params, "draft_id")) == 0:
            raise _ApiError(400, "Bad Request: draft_id must be non-zero")
        text = str(params.get("text") or "")  # may be empty
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: text is too long")
        entities = _entities(params.get("entities"), text)
        thread_id = _as_int(params.get("message_thread_id"))
        draft = Draft(chat_id, draft_id, text, list(entities), thread_id, self.clock(),
                      _bool_param(params, "can_stop"), _bool_param(params, "keep_on_stop"))
        self.drafts.setdefault(chat_id, []).append(draft)
        return True

    async def _api_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, caption = _chat_id(params), str(params.get("caption") or "")
        if utf16_len(caption) > MAX_CAPTION_LENGTH:
            raise _ApiError(400, "Bad Request: message caption is too long")
        entities = _entities(params.get("caption_entities"), caption)
        photo = params.get("photo")
        if isinstance(photo, Upload):
            sizes = self.photo_sizes(photo.data)
        elif isinstance(photo, str) and photo in self._files:
            stored = self._files[photo]
            sizes = [{"file_id": photo, "file_unique_id": stored.file_unique_id, "width": 1280,
                      "height": 960, "file_size": len(stored.data)}]
        elif isinstance(photo, str) and photo.startswith(("http://", "https://")):
            sizes = self.photo_sizes(b"", sizes=1)
        else:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        msg = self._bot_message(params, chat_id)
        msg["photo"] = sizes
        if caption:
            msg["caption"] = caption
        if entities:
            msg["caption_entities"] = entities
        self._store(msg, from_bot=True)
        return msg

    async def _api_deletemessage(self, params: dict[str, Any]) -> bool:
        message_id = _int_param(params, "message_id")
        self._live(_chat_id(params), message_id, "message to delete not found").deleted = True
        return True

    async def _api_sendchataction(self, params: dict[str, Any]) -> bool:
        _chat_id(params)
        return True

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if self._callback_queries.get(query_id, True):  # never issued, or answered already
            raise _ApiError(400, QUERY_INVALID)
        self._callback_queries[query_id] = True
        text = params.get("text")
        self.callback_answers.append({"id": query_id, "text": None if text is None else str(text),
                                      "show_alert": _bool_param(params, "show_alert")})
        return True

    async def _api_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        self.commands = commands if isinstance(commands, list) else []
        return True

    async def _api_deletemycommands(self, params: dict[str, Any]) -> bool:
        self.commands = []
        return True

    async def _api_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    async def _api_setwebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:  # an empty URL removes the webhook
            return await self._api_deletewebhook(params)
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        secret = params.get("secret_token")
        self.webhook_secret = str(secret) if secret not in (None, "") else None
        max_connections = _as_int(params.get("max_connections"))
        self.webhook_max_connections = min(max(max_connections or 40, 1), 100)
        if isinstance(params.get("allowed_updates"), list):  # else the previous setting stays
            self.allowed_updates = params["allowed_updates"]
        run = self._webhook_run
        if run is not None and url in (run.public_url, *run.urls):
            self.webhook_url = url  # the same load balancer: keep delivering where we were
            self._notify()
        else:
            self._start_webhook_run([url], url)
        return True

    async def _api_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.delete_webhook(drop_pending_updates=params.get("drop_pending_updates") is True)
        return True

    async def _api_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.webhook_info()

    async def _api_leavechat(self, params: dict[str, Any]) -> bool:
        self.left_chats.append(_chat_id(params))
        return True

    async def _api_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = _chat_id(params), _int_param(params, "user_id")
        user = self.bot_user() if user_id == self.bot_id else self._users.get(user_id) or {
            "id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        if user_id not in self.admins.get(chat_id, set()):
            return {"status": "member", "user": user}
        rights = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                  "can_restrict_members", "can_promote_members", "can_change_info",
                  "can_invite_users", "can_post_stories", "can_edit_stories",
                  "can_delete_stories", "can_pin_messages", "can_manage_topics")
        return {"status": "administrator", "user": user, "can_be_edited": False,
                "is_anonymous": False, **dict.fromkeys(rights, True)}

    async def _api_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}


def _describe(call: Call) -> str:
    chat = call.params.get("chat_id")
    return f"{call.method}(chat_id={chat}) -> {call.status} {str(call.result)[:80]!r}"
