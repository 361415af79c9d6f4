"""The PTB side of the dispatcher: turns mailbox entries back into Updates and runs the handlers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.chat import ChatService
from bot.cluster.dispatcher import Work
from bot.cluster.turns import Recovery, TurnRecord
from bot.texts import Text, say
from bot.tg import incoming
from bot.tg.handlers import language_of, target_for
from bot.tg.parts import TurnParts

log = logging.getLogger(__name__)


class PtbWorker:
    def __init__(self, app: Application, chat: ChatService, parts: TurnParts) -> None:  # type: ignore[type-arg]
        self._app = app
        self._chat = chat
        self._parts = parts

    def _updates(self, work: Work) -> list[Update]:
        updates = []
        for raw in work.updates:
            try:
                updates.append(Update.de_json(raw, self._app.bot))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("dropped an update Telegram's library could not read: %s", exc)
        return updates

    async def process(self, work: Work) -> None:
        updates = self._updates(work)
        if not updates:
            return
        parts = [u.message for u in updates if u.message is not None]
        with self._parts.holding(parts):
            await self._app.process_update(updates[0])

    async def urgent(self, raw: Mapping[str, Any]) -> None:
        updates = self._updates(Work("", (dict(raw),)))
        if updates:
            await self._app.process_update(updates[0])

    async def apologize(self, raw: Mapping[str, Any]) -> None:
        """Redis is down, so the update cannot be recorded: say so where it would be answered."""
        updates = self._updates(Work("", (dict(raw),)))
        message = updates[0].message if updates else None
        bot = self._app.bot
        if message is None or not (
            incoming.is_private(message) or incoming.addressed(message, bot.id, bot.username)
        ):
            return
        await self._chat.notify(target_for(message, bot), say(Text.STORAGE, language_of(message)))

    async def recover(self, work: Work, record: TurnRecord, action: Recovery) -> None:
        updates = self._updates(work)
        message = updates[0].effective_message if updates else None
        if message is None or action is Recovery.FINISHED:
            return
        target, language = target_for(message, self._app.bot), language_of(message)
        if action is Recovery.MARK:
            await self._chat.resume_interrupted(target, record.message_ids, record.text, language)
            return
        await self._chat.discard(target, record.message_ids)
        if action is Recovery.GIVE_UP:
            await self._chat.notify(target, say(Text.LOST, language))
