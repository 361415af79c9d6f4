"""Runs the real bot (``bot.app.run``) against the fake Telegram and Yuanqi servers and real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot.app import run
from bot.config import Settings
from tests.fakes.telegram import BOT_TOKEN, FakeTelegram, SentMessage
from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, FakeYuanqi


def make_settings(telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": BOT_TOKEN,
        "telegram_api_base_url": telegram.base_url,
        "yuanqi_token": YUANQI_TOKEN,
        "yuanqi_assistant_id": ASSISTANT_ID,
        "yuanqi_api_url": yuanqi.url,
        "redis_url": redis_url,
        "edit_interval_private": 0.05,
        "edit_interval_group": 0.1,
        "stream_mode": "edit",  # tests of drafts ask for them
        "group_hold_chars": 0,  # tests of short group answers ask for it
        "yuanqi_first_byte_timeout": 5,
        "yuanqi_total_timeout": 10,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class RunningBot:
    """The bot process's main coroutine, run as a task on the test's loop."""

    def __init__(self, telegram: FakeTelegram, yuanqi: FakeYuanqi, settings: Settings) -> None:
        self.telegram = telegram
        self.yuanqi = yuanqi
        self.settings = settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop = asyncio.Event()
        polls_before = len(self.telegram.calls_of("getUpdates"))
        self._task = asyncio.get_running_loop().create_task(run(self.settings, self._stop))
        await self.telegram.wait_for(
            lambda: len(self.telegram.calls_of("getUpdates")) > polls_before or self._task_done()
        )
        if self._task.done():
            self._task.result()  # raise what stopped it

    def _task_done(self) -> bool:
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=15)
        self._task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def say(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.telegram.send_user_message(chat_id, text, **kwargs)

    async def wait_text(
        self, chat_id: int, text: str, timeout: float = 10, *, final: bool = False
    ) -> SentMessage:
        """Wait until some bot message in the chat shows exactly ``text``; with ``final``, also
        without the Stop button a streaming answer carries (the answer is complete)."""
        def found() -> SentMessage | None:
            return next(
                (m for m in self.telegram.bot_messages(chat_id)
                 if m.text == text and not (final and m.buttons)),
                None,
            )
        await self.telegram.wait_for(lambda: found() is not None, timeout)
        message = found()
        assert message is not None
        return message

    async def wait_messages(self, chat_id: int, count: int, timeout: float = 10) -> list[SentMessage]:
        await self.telegram.wait_for(lambda: len(self.telegram.bot_messages(chat_id)) >= count, timeout)
        return self.telegram.bot_messages(chat_id)

    async def wait_requests(self, count: int, timeout: float = 10) -> None:
        await self.yuanqi.wait_for(lambda: len(self.yuanqi.requests) >= count, timeout)

    async def idle(self) -> None:
        """Wait until every agent request has ended and the chat lock has had time to release."""
        await self.yuanqi.wait_for(lambda: self.yuanqi.in_flight == 0)
