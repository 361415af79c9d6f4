"""TelegramTarget: a ReplyTarget over PTB's Bot, translating Telegram errors into ours."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from telegram import Bot, MessageEntity, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.reply.live import ChatUnavailable, MessageGone, RateLimited, TransientFailure
from bot.reply.render import Chunk

log = logging.getLogger(__name__)


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
            self._reply_to = None  # later parts follow on their own
        async with _translated():
            try:
                message = await self._bot.send_message(
                    self.chat_id, chunk.text, entities=_entities(chunk),
                    reply_parameters=reply, message_thread_id=self._thread_id,
                )
            except BadRequest as exc:
                if not _is_entity_error(exc):
                    raise
                log.warning("Telegram refused the entities (%s); sending plain text", exc.message)
                message = await self._bot.send_message(
                    self.chat_id, chunk.text, reply_parameters=reply,
                    message_thread_id=self._thread_id,
                )
        return message.message_id

    async def edit(self, message_id: int, chunk: Chunk) -> None:
        async with _translated():
            try:
                await self._bot.edit_message_text(
                    chunk.text, self.chat_id, message_id, entities=_entities(chunk)
                )
            except BadRequest as exc:
                if not _is_entity_error(exc):
                    raise
                log.warning("Telegram refused the entities (%s); editing as plain text", exc.message)
                await self._bot.edit_message_text(chunk.text, self.chat_id, message_id)

    async def delete(self, message_id: int) -> None:
        async with _translated():
            await self._bot.delete_message(self.chat_id, message_id)

    async def typing(self) -> None:
        async with _translated():
            await self._bot.send_chat_action(
                self.chat_id, ChatAction.TYPING, message_thread_id=self._thread_id
            )


def _entities(chunk: Chunk) -> list[MessageEntity] | None:
    return [MessageEntity.de_json(e, None) for e in chunk.entities] or None


def _is_entity_error(exc: BadRequest) -> bool:
    return "can't parse entities" in exc.message.lower() or "entit" in exc.message.lower()


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
