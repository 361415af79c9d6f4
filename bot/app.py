"""The composition root: every client is built here, wired together, and closed here."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, ExtBot

from bot.agent.client import AgentClient, AgentConfig
from bot.agent.media import MediaConfig, MediaFetcher, MediaParts
from bot.agent.media_server import media_app
from bot.agent.slots import ClusterSlots
from bot.agent.wakeups import SlotBoard
from bot.chat import ChatService
from bot.clock import Clock, SystemClock
from bot.cluster.dispatcher import Dispatcher
from bot.cluster.stops import StopBoard
from bot.config import Settings
from bot.ops.health import add_health_routes
from bot.ops.metrics import Metrics
from bot.ops.startup import CannotRun, reach_redis, reach_telegram
from bot.question import ChatLimits, Streaming
from bot.reply.pacing import ChatPacer
from bot.reply.shared_pacing import SharedSlots
from bot.texts import Text, say, use_default_language
from bot.tg.access import Access
from bot.tg.commands import register_commands
from bot.tg.handlers import Intake, Quotas, make_handlers
from bot.tg.http import AiohttpRequest, CountingRequest
from bot.tg.parts import TurnParts
from bot.tg.polling import PollingFailed, poll
from bot.tg.stopping import DRAFT_STOPPED, Stopping
from bot.tg.webhook import add_webhook_route
from bot.tg.worker import PtbWorker
from storage import (
    Connection,
    RedisChatRegistry,
    RedisHistoryStore,
    RedisRateLimiter,
    RedisStopSignals,
    RedisUsage,
    StorageError,
    close,
    connect,
    load_or_create_secret,
)
from storage.mailbox import RedisMailbox
from storage.semaphore import RedisSemaphore

log = logging.getLogger(__name__)

#: Listed explicitly, so Telegram also sends the draft stop button's update (Bot API 10.3).
ALLOWED_UPDATES = [Update.MESSAGE, Update.MY_CHAT_MEMBER, Update.CALLBACK_QUERY, DRAFT_STOPPED]


async def set_webhook(settings: Settings) -> str:
    """Register WEBHOOK_URL, the secret and the update types with Telegram (a deploy step)."""
    if not settings.webhook_url or settings.webhook_secret is None:
        return "WEBHOOK_URL and WEBHOOK_SECRET must both be set"
    async with make_bot(settings) as bot:
        await bot.set_webhook(
            settings.webhook_url, secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )
    return f"webhook set: {settings.webhook_url}"


async def delete_webhook(settings: Settings) -> str:
    """Go back to polling; pending updates are kept."""
    async with make_bot(settings) as bot:
        await bot.delete_webhook(drop_pending_updates=False)
    return "webhook deleted: the bot can poll again"


@dataclass
class Services:
    bot: ExtBot[None]
    intake: Intake
    chat: ChatService
    parts: TurnParts
    media_fetcher: MediaFetcher
    mailbox: RedisMailbox
    stops: StopBoard
    redis: Connection
    secret: bytes


def agent_http_client(settings: Settings) -> aiohttp.ClientSession:
    """The agent's HTTP client; AgentClient enforces the first-byte, idle and total timeouts."""
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.yuanqi_connect_timeout, connect=settings.yuanqi_total_timeout
    )
    connector = aiohttp.TCPConnector(limit=settings.yuanqi_max_concurrency + 2)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False)


def make_bot(settings: Settings, metrics: Metrics | None = None) -> ExtBot[None]:
    base = settings.telegram_api_base_url
    metrics = metrics or Metrics()
    # Waiting a little for a free connection beats failing an edit under a burst of chats.
    request = CountingRequest(
        metrics, connection_pool_size=128, pool_timeout=30, connect_timeout=10, read_timeout=15
    )
    # getUpdates passes its own read timeout, longer than the long poll (bot.tg.polling).
    return ExtBot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
        request=request, get_updates_request=AiohttpRequest(connection_pool_size=2),
    )


def derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


@contextlib.asynccontextmanager
async def services(
    settings: Settings, clock: Clock, replica: str, metrics: Metrics
) -> AsyncIterator[Services]:
    """Open Redis and HTTP clients, build the domain objects, and close everything afterwards."""
    redis = connect(settings.redis_url)
    http = agent_http_client(settings)
    try:
        await reach_redis(redis, settings.redis_url, clock)
        secret = (
            settings.user_id_secret.get_secret_value().encode()
            if settings.user_id_secret
            else await load_or_create_secret(redis, bot_id=settings.bot_id)
        )
        bot = make_bot(settings, metrics)
        fetcher = MediaFetcher(bot, settings.max_media_bytes)
        media = MediaParts(fetcher, MediaConfig(
            style=settings.media_part_style, base_url=settings.media_base_url,
            link_ttl=settings.media_link_ttl, secret=derive(secret, "media"),
            max_turn_bytes=settings.max_turn_media_bytes,
        ))
        usage = RedisUsage(redis, bot_id=settings.bot_id)
        stops = StopBoard(RedisStopSignals(redis, bot_id=settings.bot_id), clock)
        lease_ms = int(settings.chat_lease_seconds * 1000)  # what a crashed replica holds, at most
        mailbox = RedisMailbox(redis, bot_id=settings.bot_id, lease_ms=lease_ms)
        semaphore = RedisSemaphore(
            redis, bot_id=settings.bot_id, limit=settings.yuanqi_max_concurrency,
            lease_ms=lease_ms, waiter_ttl_ms=lease_ms,
        )
        slot_board = SlotBoard(semaphore, clock)
        chat = ChatService(
            agent=AgentClient(http, AgentConfig(
                url=settings.yuanqi_api_url, token=settings.yuanqi_token.get_secret_value(),
                assistant_id=settings.yuanqi_assistant_id,
                first_byte_timeout=settings.yuanqi_first_byte_timeout,
                total_timeout=settings.yuanqi_total_timeout, max_retries=settings.yuanqi_max_retries,
                idle_timeout=settings.yuanqi_idle_timeout,
            )),
            store=RedisHistoryStore(
                redis, bot_id=settings.bot_id, max_turns=settings.history_max_turns,
                ttl_seconds=settings.history_ttl_seconds,
            ),
            pacer=ChatPacer(
                clock, settings.telegram_max_ops_per_second,
                book=SharedSlots(RedisRateLimiter(redis, bot_id=settings.bot_id), clock),
            ),
            clock=clock, secret=secret,
            media=media, metrics=metrics, usage=usage,
            limits=ChatLimits(
                max_messages=settings.history_max_messages, max_chars=settings.history_max_chars,
                max_input_chars=settings.max_input_chars,
                interval_private=settings.edit_interval_private,
                interval_group=settings.edit_interval_group,
                max_images=settings.history_max_images if settings.media_base_url else 0,
            ),
            agent_slots=ClusterSlots(semaphore, clock, replica=replica, board=slot_board),
            streaming=Streaming(
                mode=settings.stream_mode, draft_interval=settings.draft_interval,
                draft_keepalive=settings.draft_keepalive, group_hold_chars=settings.group_hold_chars,
            ),
            stops=stops,
        )
        parts = TurnParts()
        intake = Intake(
            chat=chat, registry=RedisChatRegistry(redis, bot_id=settings.bot_id),
            access=Access(settings.allowed_user_ids, settings.allowed_chat_ids), parts=parts,
            media=media, scope=settings.group_session_scope,
            reset_admins_only=settings.group_reset_admins_only,
            max_media_bytes=settings.max_media_bytes, usage=usage,
            quotas=Quotas(settings.daily_token_limit_per_user, settings.messages_per_minute_per_user),
            max_input_chars=settings.max_input_chars, stopping=Stopping(mailbox, stops),
        )
        metrics.add_refresher(lambda: _count_slots(semaphore, metrics))
        metrics.add_refresher(lambda: _count_queue(mailbox, metrics))
        slot_board.start()  # until it is subscribed, slot waiters poll fast
        try:
            yield Services(
                bot=bot, intake=intake, chat=chat, parts=parts, media_fetcher=fetcher,
                mailbox=mailbox, stops=stops, redis=redis, secret=secret,
            )
        finally:
            await slot_board.close()
    finally:
        await http.close()
        await close(redis)


async def _count_slots(semaphore: RedisSemaphore, metrics: Metrics) -> None:
    metrics.agent_slots_in_use.set(await semaphore.in_use())


async def _count_queue(mailbox: RedisMailbox, metrics: Metrics) -> None:
    metrics.queue_depth.set(await mailbox.depth([route for route, _ in await mailbox.pending(1000)]))


def build_application(bot: ExtBot[None], intake: Intake) -> Application:  # type: ignore[type-arg]
    """PTB's Application only routes updates to handlers: the dispatcher feeds it, not an Updater."""
    app = Application.builder().bot(bot).updater(None).build()
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


def replica_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def _ready(redis: Connection, dispatcher: Dispatcher) -> tuple[bool, str]:
    if dispatcher.stopping:
        return False, "shutting down"
    try:
        async with asyncio.timeout(1.5):
            await redis.ping()
    except (StorageError, OSError, TimeoutError) as exc:
        return False, f"redis unreachable: {type(exc).__name__}"
    return True, "ok"


def _listens(settings: Settings) -> set[str]:
    listens = {settings.webhook_listen} if settings.telegram_mode == "webhook" else set()
    if settings.health_listen:
        listens.add(settings.health_listen)
    if settings.media_base_url:
        listens.add(settings.media_listen)
    return listens


async def _start_http(app: web.Application, listens: set[str]) -> web.AppRunner | None:
    if not listens:
        return None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for listen in sorted(listens):
        host, _, port = listen.rpartition(":")
        try:
            await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()  # noqa: S104 - containers bind all
        except OSError as exc:
            await runner.cleanup()
            raise CannotRun(f"cannot start: cannot listen on {listen} ({exc.strerror or exc}); check "
                            "WEBHOOK_LISTEN, HEALTH_LISTEN and MEDIA_LISTEN") from None
    return runner


def _polling_ended(poller: asyncio.Task[None]) -> CannotRun:
    """Why the process must exit (non-zero, so that it is restarted) after polling ended by itself."""
    if poller.cancelled() or isinstance(poller.exception(), PollingFailed):
        return CannotRun("stopped: Telegram no longer accepts the bot token; check TELEGRAM_BOT_TOKEN "
                         "(revoked? copy it again from @BotFather)")
    log.error("polling for updates failed", exc_info=poller.exception())
    return CannotRun("stopped: polling for updates failed (see the error above); exiting so that the "
                     "process is restarted")


async def run(settings: Settings, stop: asyncio.Event, *, clock: Clock | None = None) -> None:
    """Take updates (long polling or webhook) and answer them until ``stop`` is set."""
    clock = clock or SystemClock()
    use_default_language(settings.default_language)
    replica = replica_name()
    metrics = Metrics()
    async with services(settings, clock, replica, metrics) as svc:
        await reach_telegram(svc.bot, settings.telegram_api_base_url, clock)
        await register_commands(svc.bot)
        app = build_application(svc.bot, svc.intake)
        svc.stops.start()
        async with app:
            worker = PtbWorker(app, svc.chat, svc.parts)
            dispatcher = Dispatcher(
                svc.mailbox, worker, clock, replica=replica, album_wait=settings.album_wait
            )

            async def record(update: Mapping[str, Any], body: str | None = None) -> bool:
                metrics.updates_received.labels(source=settings.telegram_mode).inc()
                try:
                    fresh = await dispatcher.record(update, body)
                    if not fresh:
                        metrics.updates_duplicate.inc()
                    return fresh
                except StorageError as exc:  # the user hears why, rather than silence
                    log.error("could not record an update, Redis failed: %s", exc)
                    await worker.apologize(update)
                    return False

            http = (
                media_app(svc.media_fetcher, derive(svc.secret, "media"))
                if settings.media_base_url else web.Application()
            )
            add_health_routes(http, ready=lambda: _ready(svc.redis, dispatcher), metrics=metrics)
            if settings.telegram_mode == "webhook":
                assert settings.webhook_secret is not None
                add_webhook_route(
                    http, path=settings.webhook_path,
                    secret=settings.webhook_secret.get_secret_value(),
                    record=record,
                    accepting=lambda: not dispatcher.stopping,
                )
            runner = await _start_http(http, _listens(settings))
            dispatcher.start()
            poller: asyncio.Task[None] | None = None
            if settings.telegram_mode == "polling":
                poller = asyncio.get_running_loop().create_task(
                    poll(svc.bot, record, clock, allowed_updates=ALLOWED_UPDATES)
                )
                poller.add_done_callback(lambda _: stop.set())  # polling never ends unless it failed
            log.info("bot @%s is taking updates by %s", app.bot.username, settings.telegram_mode)
            failed: CannotRun | None = None
            try:
                await stop.wait()
                failed = _polling_ended(poller) if poller is not None and poller.done() else None
                log.info("stopping: no new updates; answers in flight get %.0f s",
                         settings.shutdown_grace_seconds)
                if poller is not None:
                    poller.cancel()
                    await asyncio.gather(poller, return_exceptions=True)
                await dispatcher.stop(settings.shutdown_grace_seconds)
            finally:
                await svc.stops.close()
                if runner is not None:
                    await runner.cleanup()
            if failed is not None:
                raise failed
