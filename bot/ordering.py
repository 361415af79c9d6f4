"""Updates from different chats run concurrently; updates from one chat run one at a time.

PTB hands updates to the processor in arrival order and asyncio locks are fair (FIFO), so a
quick second message in a chat is handled after the first one has finished, with the first
turn already in its history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.albums import Albums


class PerChatOrder(BaseUpdateProcessor):
    def __init__(self, albums: Albums, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._albums = albums
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[object]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        message = update.effective_message if isinstance(update, Update) else None
        if message is not None and self._albums.claim(message):
            getattr(coroutine, "close", lambda: None)()  # folded into the album's first message
            return
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] = self._users.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:  # nobody holds or waits: forget the lock
                del self._users[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
