"""The composition root: every client is built here, wired together, and closed here."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, ExtBot
from telegram.request import HTTPXRequest

from bot.access import Access
from bot.agent import AgentClient, AgentConfig
from bot.albums import Albums
from bot.chat import ChatLimits, ChatService
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.handlers import Intake, make_handlers
from bot.media import MediaConfig, MediaFetcher, MediaParts
from bot.media_server import media_app, start_media_server
from bot.ordering import PerChatOrder
from bot.pacing import ChatPacer
from bot.texts import Text, say
from storage import RedisChatRegistry, RedisHistoryStore, load_or_create_secret

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.MY_CHAT_MEMBER]


@dataclass
class Services:
    bot: ExtBot[None]
    intake: Intake
    albums: Albums
    media_fetcher: MediaFetcher
    secret: bytes


def agent_http_client(settings: Settings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.yuanqi_connect_timeout, read=settings.yuanqi_total_timeout,
        write=30.0, pool=settings.yuanqi_total_timeout,
    )
    limits = httpx.Limits(max_connections=settings.yuanqi_max_concurrency + 2)
    return httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)


def make_bot(settings: Settings) -> ExtBot[None]:
    base = settings.telegram_api_base_url
    # Waiting a little for a free connection beats failing an edit under a burst of chats.
    request = HTTPXRequest(
        connection_pool_size=128, pool_timeout=30, connect_timeout=10, read_timeout=15, write_timeout=15
    )
    return ExtBot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
        request=request, get_updates_request=HTTPXRequest(connection_pool_size=2),
    )


def derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


@contextlib.asynccontextmanager
async def services(settings: Settings, clock: Clock) -> AsyncIterator[Services]:
    """Open Redis and HTTP clients, build the domain objects, and close everything afterwards."""
    # A bounded pool that makes a burst of chats wait for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=20)
    redis = Redis(connection_pool=pool)
    http = agent_http_client(settings)
    try:
        secret = (
            settings.user_id_secret.get_secret_value().encode()
            if settings.user_id_secret
            else await load_or_create_secret(redis, bot_id=settings.bot_id)
        )
        bot = make_bot(settings)
        fetcher = MediaFetcher(bot, settings.max_media_bytes)
        media = MediaParts(fetcher, MediaConfig(
            style=settings.media_part_style, base_url=settings.media_base_url,
            link_ttl=settings.media_link_ttl, secret=derive(secret, "media"),
        ))
        chat = ChatService(
            agent=AgentClient(http, AgentConfig(
                url=settings.yuanqi_api_url, token=settings.yuanqi_token.get_secret_value(),
                assistant_id=settings.yuanqi_assistant_id,
                first_byte_timeout=settings.yuanqi_first_byte_timeout,
                total_timeout=settings.yuanqi_total_timeout, max_retries=settings.yuanqi_max_retries,
            )),
            store=RedisHistoryStore(
                redis, bot_id=settings.bot_id, max_turns=settings.history_max_turns,
                ttl_seconds=settings.history_ttl_seconds,
            ),
            pacer=ChatPacer(clock, settings.telegram_max_ops_per_second), clock=clock, secret=secret,
            media=media,
            limits=ChatLimits(
                max_messages=settings.history_max_messages, max_chars=settings.history_max_chars,
                max_input_chars=settings.max_input_chars,
                interval_private=settings.edit_interval_private,
                interval_group=settings.edit_interval_group,
                max_images=settings.history_max_images if settings.media_base_url else 0,
            ),
            agent_slots=asyncio.Semaphore(settings.yuanqi_max_concurrency),
        )
        albums = Albums(clock, settings.album_wait)
        intake = Intake(
            chat=chat, registry=RedisChatRegistry(redis, bot_id=settings.bot_id),
            access=Access(settings.allowed_user_ids, settings.allowed_chat_ids), albums=albums,
            media=media, scope=settings.group_session_scope,
            reset_admins_only=settings.group_reset_admins_only,
            max_media_bytes=settings.max_media_bytes,
        )
        yield Services(bot=bot, intake=intake, albums=albums, media_fetcher=fetcher, secret=secret)
    finally:
        await http.aclose()
        await redis.aclose(close_connection_pool=True)


def build_application(bot: ExtBot[None], intake: Intake, albums: Albums) -> Application:  # type: ignore[type-arg]
    app = Application.builder().bot(bot).concurrent_updates(PerChatOrder(albums)).build()
    app.add_handlers(make_handlers(intake))
    app.add_error_handler(_log_error)
    return app


async def _log_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first (so it is seen even if telling the user fails), then say something went wrong."""
    log.error("unhandled error in an update handler", exc_info=context.error)
    message = update.effective_message if isinstance(update, Update) else None
    if message is None:
        return
    user = message.from_user
    try:
        await message.reply_text(say(Text.INTERNAL, user.language_code if user else None))
    except TelegramError as exc:
        log.warning("could not report the error to the user: %s", exc.message)


async def run(settings: Settings, stop: asyncio.Event, *, clock: Clock | None = None) -> None:
    """Serve with long polling (and the media endpoint, when configured) until ``stop`` is set."""
    async with services(settings, clock or SystemClock()) as svc:
        app = build_application(svc.bot, svc.intake, svc.albums)
        media_runner: web.AppRunner | None = None
        async with app:
            if settings.media_base_url:
                server = media_app(svc.media_fetcher, derive(svc.secret, "media"))
                media_runner = await start_media_server(server, settings.media_listen)
            try:
                assert app.updater is not None
                await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                await app.start()
                log.info("bot @%s is polling for updates", app.bot.username)
                await stop.wait()
                await app.updater.stop()
                await app.stop()
            finally:
                if media_runner is not None:
                    await media_runner.cleanup()
