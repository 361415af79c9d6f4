"""``yuanqi-bot check``: is the configuration usable? One line per dependency, no agent tokens spent."""

from __future__ import annotations

import asyncio

import aiohttp
from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bot.app import agent_http_client
from bot.config import Settings
from bot.ops.startup import address, telegram_refusal
from storage import StorageError, close, connect, server_version

TIMEOUT = 10.0


async def check_redis(settings: Settings) -> tuple[bool, str]:
    redis = connect(settings.redis_url, max_connections=1, wait=TIMEOUT, connect_timeout=TIMEOUT)
    try:
        return True, f"reachable (Redis {await server_version(redis)})"
    except (StorageError, OSError) as exc:
        return False, f"unreachable: {exc}"
    finally:
        await close(redis)


async def check_telegram(settings: Settings) -> tuple[bool, str]:
    base = settings.telegram_api_base_url
    bot = Bot(settings.telegram_bot_token.get_secret_value(), base_url=f"{base}/bot",
              base_file_url=f"{base}/file/bot")
    try:
        async with bot:
            return True, f"token accepted: @{bot.username} (id {bot.id})"
    except InvalidToken as exc:  # a 401 (the token) or a 404 (the address): say which
        return False, telegram_refusal(exc, address(base), settings.telegram_bot_token.get_secret_value())
    except TelegramError as exc:
        return False, f"unreachable: {exc.message}"


async def check_yuanqi(settings: Settings) -> tuple[bool, str]:
    """POST a request with no messages: the API refuses it before any model runs."""
    body = {"assistant_id": settings.yuanqi_assistant_id, "user_id": "healthcheck", "stream": False,
            "messages": []}
    headers = {"Authorization": f"Bearer {settings.yuanqi_token.get_secret_value()}",
               "X-Source": "openapi"}
    async with agent_http_client(settings) as http:
        try:
            async with asyncio.timeout(TIMEOUT), http.post(
                settings.yuanqi_api_url, json=body, headers=headers
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, f"unreachable: {type(exc).__name__}"
    if status in (401, 403):
        return False, f"reachable, but the token was rejected (HTTP {status})"
    if status == 429 or status >= 500:
        return False, f"reachable, but failing (HTTP {status})"
    return True, f"reachable (HTTP {status} to an empty probe; token not refused)"


async def run_checks(settings: Settings) -> list[tuple[str, bool, str]]:
    names = ("redis", "telegram", "yuanqi")
    results = await asyncio.gather(
        check_redis(settings), check_telegram(settings), check_yuanqi(settings)
    )
    return [(name, ok, detail) for name, (ok, detail) in zip(names, results, strict=True)]
