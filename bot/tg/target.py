"""TelegramTarget: a ReplyTarget over PTB's Bot, translating Telegram errors into ours.

A failed send is retried by LiveReply, and the retry must look like the first attempt: the
same topic, still a reply to the question. But a send is only repeated when the failure proves
Telegram never took the request: a 429 or other refusal, or one of :data:`bot.tg.http.NOT_SENT`
(a connection never made, or no free slot in the connection pool). When the request may have
gone out and the answer was lost (a read timeout, a dropped connection, a 5xx from Telegram's
front end) the message may already be in the chat, and the Bot API has no idempotency key to
ask; sending it again could show it twice, so the reply stops there instead
(:class:`DeliveryUnknown`). Edits and deletes are safe to repeat and are retried after any
transient failure.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram._utils.types import JSONDict
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning

from bot.reply.ports import ChatUnavailable, MessageGone, RateLimited, TransientFailure
from bot.reply.render import Chunk
from bot.tg.http import NOT_SENT

log = logging.getLogger(__name__)

# do_api_request("sendMessage") and the like are deliberate (TelegramTarget says why).
warnings.filterwarnings(
    "ignore", message=r"Please use 'Bot\.(sendMessage|editMessageText|sendMessageDraft)'",
    category=PTBUserWarning,
)


class DeliveryUnknown(ChatUnavailable):
    """A send may or may not have reached the chat; the reply stops rather than risk showing it twice."""


class TelegramTarget:
    """Messages in one chat (and forum topic), the first one replying to ``reply_to``.

    Sends, edits and drafts go to the Bot API as Telegram's own JSON (``do_api_request``): a
    chunk's entities are already JSON, and the answer, which PTB would build into a ``Message``
    only for us to read its id, is read as JSON too. That halves the CPU of each call.
    """

    def __init__(
        self, bot: Bot, chat_id: int, *, reply_to: int | None = None, thread_id: int | None = None
    ) -> None:
        self._bot = bot
        self.chat_id = chat_id
        self._reply_to = reply_to
        self._thread_id = thread_id

    async def send(self, chunk: Chunk) -> int:
        where: JSONDict = {"chat_id": self.chat_id}
        if self._thread_id is not None:
            where["message_thread_id"] = self._thread_id
        if self._reply_to is not None:
            where["reply_parameters"] = {"message_id": self._reply_to, "allow_sending_without_reply": True}
        async with _translated(), _at_most_once():
            message = await self._call("sendMessage", where, chunk)
        self._reply_to = None  # shown: later parts follow on their own (a retry still replies)
        return int(message["message_id"])

    async def edit(self, message_id: int, chunk: Chunk) -> None:
        async with _translated():
            await self._call("editMessageText", {"chat_id": self.chat_id, "message_id": message_id}, chunk)

    async def delete(self, message_id: int) -> None:
        async with _translated():
            await self._bot.delete_message(self.chat_id, message_id)

    async def draft(self, draft_id: int, chunk: Chunk) -> None:
        """The private chat's native draft, with Telegram's stop button (Bot API 10.3, which
        PTB 22.8 predates)."""
        where: JSONDict = {"chat_id": self.chat_id, "draft_id": draft_id, "can_stop": True}
        if self._thread_id is not None:
            where["message_thread_id"] = self._thread_id
        async with _translated():
            await self._call("sendMessageDraft", where, replace(chunk, button=None))

    async def typing(self) -> None:
        async with _translated():
            await self._bot.send_chat_action(
                self.chat_id, ChatAction.TYPING, message_thread_id=self._thread_id
            )

    async def _call(self, method: str, where: JSONDict, chunk: Chunk) -> Any:
        """``method`` with the chunk's text, entities and button; as plain text if Telegram
        refuses the entities."""
        body = {**where, "text": chunk.text}
        if chunk.button is not None:  # an edit without one removes the button shown
            label, data = chunk.button
            body["reply_markup"] = {"inline_keyboard": [[{"text": label, "callback_data": data}]]}
        if chunk.entities:
            try:
                return await self._bot.do_api_request(method, api_kwargs={**body, "entities": chunk.entities})
            except BadRequest as exc:
                if not _is_entity_error(exc):
                    raise
                log.warning("Telegram refused the entities (%s); as plain text", exc.message)
        return await self._bot.do_api_request(method, api_kwargs=body)


def _is_entity_error(exc: BadRequest) -> bool:
    return "can't parse entities" in exc.message.lower() or "entit" in exc.message.lower()


@asynccontextmanager
async def _at_most_once() -> AsyncIterator[None]:
    """A network failure that may have let the request out becomes DeliveryUnknown, which is not
    retried; one whose ``__cause__`` is in :data:`~bot.tg.http.NOT_SENT` stays transient."""
    try:
        yield
    except NetworkError as exc:
        if isinstance(exc, BadRequest) or isinstance(exc.__cause__, NOT_SENT):
            raise  # BadRequest is PTB's NetworkError too, yet an answer: Telegram refused it
        log.warning("a message may or may not have been sent (%s); not sending it again", exc.message)
        raise DeliveryUnknown(f"outcome unknown: {exc.message}") from None


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Map PTB's exceptions onto the small set LiveReply acts on."""
    try:
        yield
    except RetryAfter as exc:
        raise RateLimited(_seconds(exc)) from None
    except BadRequest as exc:
        text = exc.message.lower()
        if "message is not modified" in text:
            return
        if "message to edit not found" in text or "message to delete not found" in text:
            raise MessageGone(exc.message) from None
        if "chat not found" in text or "have no rights" in text or "not enough rights" in text:
            raise ChatUnavailable(exc.message) from None
        raise TransientFailure(exc.message) from None
    except Forbidden as exc:
        raise ChatUnavailable(exc.message) from None
    except NetworkError as exc:  # includes TimedOut
        raise TransientFailure(f"network: {exc.message}") from None
    except TelegramError as exc:
        raise TransientFailure(exc.message) from None


def _seconds(exc: RetryAfter) -> float:
    value = exc._retry_after  # an int or a timedelta, depending on PTB_TIMEDELTA
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
