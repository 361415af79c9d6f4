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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.reply.ports import ChatUnavailable, MessageGone, RateLimited, TransientFailure
from bot.reply.render import Chunk
from bot.tg.http import NOT_SENT

log = logging.getLogger(__name__)


class DeliveryUnknown(ChatUnavailable):
    """A send may or may not have reached the chat; the reply stops rather than risk showing it twice."""


class TelegramTarget:
    """Messages in one chat (and forum topic), the first one replying to ``reply_to``."""

    def __init__(
        self, bot: Bot, chat_id: int, *, reply_to: int | None = None, thread_id: int | None = None
    ) -> None:
        self._bot = bot
        self.chat_id = chat_id
        self._reply_to = reply_to
        self._thread_id = thread_id

    async def send(self, chunk: Chunk) -> int:
        reply = None
        if self._reply_to is not None:
            reply = ReplyParameters(self._reply_to, allow_sending_without_reply=True)
        async with _translated(), _at_most_once():
            try:
                message = await self._bot.send_message(
                    self.chat_id, chunk.text, entities=_entities(chunk),
                    reply_parameters=reply, message_thread_id=self._thread_id,
                    reply_markup=_keyboard(chunk),
                )
            except BadRequest as exc:
                if not _is_entity_error(exc):
                    raise
                log.warning("Telegram refused the entities (%s); sending plain text", exc.message)
                message = await self._bot.send_message(
                    self.chat_id, chunk.text, reply_parameters=reply,
                    message_thread_id=self._thread_id, reply_markup=_keyboard(chunk),
                )
        self._reply_to = None  # shown: later parts follow on their own (a retry still replies)
        return message.message_id

    async def edit(self, message_id: int, chunk: Chunk) -> None:
        async with _translated():
            try:
                await self._bot.edit_message_text(
                    chunk.text, self.chat_id, message_id, entities=_entities(chunk),
                    reply_markup=_keyboard(chunk),
                )
            except BadRequest as exc:
                if not _is_entity_error(exc):
                    raise
                log.warning("Telegram refused the entities (%s); editing as plain text", exc.message)
                await self._bot.edit_message_text(
                    chunk.text, self.chat_id, message_id, reply_markup=_keyboard(chunk)
                )

    async def delete(self, message_id: int) -> None:
        async with _translated():
            await self._bot.delete_message(self.chat_id, message_id)

    async def draft(self, draft_id: int, chunk: Chunk) -> None:
        """The private chat's native draft, with Telegram's stop button (Bot API 10.3, which
        PTB 22.8 predates: ``can_stop`` goes as an extra parameter)."""
        async with _translated():
            await self._bot.send_message_draft(
                self.chat_id, draft_id, chunk.text, message_thread_id=self._thread_id,
                entities=_entities(chunk), api_kwargs={"can_stop": True},
            )

    async def typing(self) -> None:
        async with _translated():
            await self._bot.send_chat_action(
                self.chat_id, ChatAction.TYPING, message_thread_id=self._thread_id
            )


def _entities(chunk: Chunk) -> list[MessageEntity] | None:
    return [MessageEntity.de_json(e, None) for e in chunk.entities] or None


def _keyboard(chunk: Chunk) -> InlineKeyboardMarkup | None:
    """The chunk's button; None (no keyboard) also removes one from an edited message."""
    if chunk.button is None:
        return None
    label, data = chunk.button
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)]])


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
