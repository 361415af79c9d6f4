"""The composition root: every client is built here, wired together, and closed here."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis
from telegram import Update
from telegram.ext import Application, ContextTypes

from bot.agent import AgentClient, AgentConfig
from bot.chat import ChatLimits, ChatService
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.handlers import make_handlers
from bot.ordering import PerChatOrder
from bot.pacing import ChatPacer
from storage import RedisHistoryStore, load_or_create_secret

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.MY_CHAT_MEMBER]


@dataclass
class Services:
    redis: Redis
    http: httpx.AsyncClient
    chat: ChatService

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.redis.aclose(close_connection_pool=True)


def agent_http_client(settings: Settings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.yuanqi_connect_timeout, read=settings.yuanqi_total_timeout,
        write=30.0, pool=settings.yuanqi_total_timeout,
    )
    limits = httpx.Limits(max_connections=settings.yuanqi_max_concurrency + 2)
    return httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)


async def open_services(settings: Settings, clock: Clock) -> Services:
    redis = Redis.from_url(settings.redis_url)
    http = agent_http_client(settings)
    try:
        secret = (
            settings.user_id_secret.get_secret_value().encode()
            if settings.user_id_secret
            else await load_or_create_secret(redis, bot_id=settings.bot_id)
        )
    except BaseException:
        await http.aclose()
        await redis.aclose(close_connection_pool=True)
        raise
    agent = AgentClient(http, AgentConfig(
        url=settings.yuanqi_api_url, token=settings.yuanqi_token.get_secret_value(),
        assistant_id=settings.yuanqi_assistant_id,
        first_byte_timeout=settings.yuanqi_first_byte_timeout,
        total_timeout=settings.yuanqi_total_timeout, max_retries=settings.yuanqi_max_retries,
    ))
    store = RedisHistoryStore(
        redis, bot_id=settings.bot_id, max_turns=settings.history_max_turns,
        ttl_seconds=settings.history_ttl_seconds,
    )
    chat = ChatService(
        agent=agent, store=store, pacer=ChatPacer(clock), clock=clock, secret=secret,
        limits=ChatLimits(
            max_messages=settings.history_max_messages, max_chars=settings.history_max_chars,
            max_input_chars=settings.max_input_chars,
            interval_private=settings.edit_interval_private,
            interval_group=settings.edit_interval_group,
        ),
        agent_slots=asyncio.Semaphore(settings.yuanqi_max_concurrency),
    )
    return Services(redis=redis, http=http, chat=chat)


def build_application(settings: Settings, chat: ChatService) -> Application:  # type: ignore[type-arg]
    base = settings.telegram_api_base_url
    app = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .concurrent_updates(PerChatOrder())
        .build()
    )
    app.add_handlers(make_handlers(chat))
    app.add_error_handler(_log_error)
    return app


async def _log_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("unhandled error in an update handler", exc_info=context.error)


async def run(settings: Settings, stop: asyncio.Event, *, clock: Clock | None = None) -> None:
    """Serve with long polling until ``stop`` is set."""
    services = await open_services(settings, clock or SystemClock())
    try:
        app = build_application(settings, services.chat)
        async with app:
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            await app.start()
            log.info("bot @%s is polling for updates", app.bot.username)
            await stop.wait()
            await app.updater.stop()
            await app.stop()
    finally:
        await services.aclose()
