"""Stopping the answer being written: Telegram's stop button on a draft, our inline Stop button
under a streaming message, and /stop.

These updates are handled as soon as they arrive (beside the chat's queue, see
``Dispatcher.record``), on whichever replica got them. The chat's turn record in Redis says which
turn is running, who asked it and which messages show it; the stop is then published for that
turn, and the replica that streams it closes the agent's stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from telegram import Bot, ChatMember, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot.cluster.routing import STOP_DATA, turn_of
from bot.cluster.turns import TurnRecord
from bot.texts import Text, say
from storage import StorageError

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
DRAFT_STOPPED = "stopped_message_generation"  # Bot API 10.3; PTB 22.8 leaves it in api_kwargs


class TurnReader(Protocol):
    async def turn(self, route: str) -> str:
        """The chat's running turn record, '' when none."""


class StopRequests(Protocol):
    async def request(self, route: str, turn: int) -> None: ...


class Verdict(Enum):
    STOPPING = "stopping"
    NOTHING = "nothing"  # no answer is being written (or not the one the button was under)
    NOT_YOURS = "not_yours"  # in a group, only the asker or an admin may stop an answer


@dataclass(frozen=True)
class Stopping:
    turns: TurnReader
    signals: StopRequests

    async def stop(
        self, chat_id: int, may_stop: Callable[[TurnRecord], Awaitable[bool]], *,
        turn: int | None = None, draft_id: int | None = None,
    ) -> Verdict:
        """Stop the chat's running turn, if it is the one meant (``turn``, or the turn that streams
        ``draft_id``; else whichever is running) and the user may stop it."""
        route = str(chat_id)
        record = TurnRecord.loads(await self.turns.turn(route))
        if record is None or record.final:
            return Verdict.NOTHING
        if turn is not None and turn != record.update_id:
            return Verdict.NOTHING
        if draft_id is not None and draft_id != record.draft_id:
            return Verdict.NOTHING
        if not await may_stop(record):
            return Verdict.NOT_YOURS
        await self.signals.request(route, record.update_id)
        return Verdict.STOPPING


class DraftStopHandler(BaseHandler[Update, Context, None]):
    """Telegram's stop button on a draft: an update type PTB 22.8 does not know yet."""

    def check_update(self, update: object) -> bool:
        return isinstance(update, Update) and isinstance(update.api_kwargs.get(DRAFT_STOPPED), dict)


def stop_handlers(
    stopping: Stopping, notify: Callable[[Update, Context, Text], Awaitable[None]]
) -> list[BaseHandler[Update, Context, None]]:
    async def draft_stopped(update: Update, context: Context) -> None:
        """The user pressed stop on the draft in a private chat: only they could."""
        event = update.api_kwargs[DRAFT_STOPPED]
        chat, draft_id = event.get("chat"), event.get("draft_id")
        if not isinstance(chat, dict) or not isinstance(chat.get("id"), int) or not isinstance(draft_id, int):
            log.warning("ignored a malformed %s update", DRAFT_STOPPED)
            return
        try:
            verdict = await stopping.stop(chat["id"], _anyone, draft_id=draft_id)
        except StorageError as exc:
            log.error("could not stop an answer, Redis failed: %s", exc)
            return
        log.info("draft stop: %s", verdict.value)

    async def button(update: Update, context: Context) -> None:
        """The Stop button under a streaming answer; the query is always answered."""
        query = update.callback_query
        if query is None or query.message is None:
            return
        language = query.from_user.language_code
        user, chat_id = query.from_user.id, query.message.chat.id
        try:
            verdict = await stopping.stop(
                chat_id, _asker_or_admin(context.bot, chat_id, user), turn=turn_of(query.data)
            )
            text = {Verdict.STOPPING: Text.STOP_OK, Verdict.NOTHING: Text.STOP_NOTHING,
                    Verdict.NOT_YOURS: Text.STOP_NOT_YOURS}[verdict]
        except StorageError as exc:
            log.error("could not stop an answer, Redis failed: %s", exc)
            verdict, text = Verdict.NOTHING, Text.STORAGE
        try:
            await query.answer(say(text, language), show_alert=verdict is Verdict.NOT_YOURS)
        except TelegramError as exc:
            log.info("could not answer a button press: %s", exc.message)

    async def command(update: Update, context: Context) -> None:
        """/stop: the chat's answer being written, if the sender may stop it."""
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        may_stop = _asker_or_admin(context.bot, message.chat_id, message.from_user.id)
        try:
            verdict = await stopping.stop(message.chat_id, may_stop)
        except StorageError as exc:
            log.error("could not stop an answer, Redis failed: %s", exc)
            await notify(update, context, Text.STORAGE)
            return
        if verdict is not Verdict.STOPPING:  # else the answer itself says it was stopped
            await notify(update, context, Text.STOP_NOTHING if verdict is Verdict.NOTHING
                         else Text.STOP_NOT_YOURS)

    return [
        DraftStopHandler(draft_stopped),
        CallbackQueryHandler(button, pattern=f"^{STOP_DATA}"),
        CommandHandler("stop", command, filters.UpdateType.MESSAGE),
    ]


async def _anyone(record: TurnRecord) -> bool:
    return True


def _asker_or_admin(bot: Bot, chat_id: int, user_id: int) -> Callable[[TurnRecord], Awaitable[bool]]:
    """In a private chat anyone (the one person there); in a group the asker or an admin."""
    async def check(record: TurnRecord) -> bool:
        if chat_id > 0 or record.asker == user_id:
            return True
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.warning("could not check admin status: %s", exc.message)
            return False
        return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
    return check
