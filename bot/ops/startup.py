"""Start-up probes: reach Redis and Telegram, riding out brief outages, or fail in one clear line.

Each failure becomes :class:`CannotRun`, whose text is the one line an operator reads: what is
wrong and which setting to check, never a secret. Network failures (refused connections,
timeouts) are retried with backoff first, since a container often starts before its network or
Redis is up; a refused token or a wrong address is not, as waiting will not change the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.clock import Clock
from storage import Connection, StorageError

log = logging.getLogger(__name__)

#: Seconds to wait before each retry: four attempts over about seven seconds.
RETRY_DELAYS = (1.0, 2.0, 4.0)


class CannotRun(Exception):
    """The bot cannot start (or go on); ``str()`` is one line for operators, free of secrets."""


def address(url: str) -> str:
    """``host:port`` (or the socket path) of a URL, without credentials, path or query."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


async def _retrying(
    attempt: Callable[[], Awaitable[object]], transient: tuple[type[Exception], ...], what: str,
    clock: Clock,
) -> None:
    """Run ``attempt``; on a ``transient`` error wait and try again, up to len(RETRY_DELAYS) times."""
    for tries, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            await attempt()
        except transient as exc:
            if delay is None:
                raise
            log.warning("%s is not reachable yet (%s); trying again in %.0f s (%d/%d)",
                        what, _reason(exc), delay, tries, len(RETRY_DELAYS))
            await clock.sleep(delay)
        else:
            return


async def reach_redis(redis: Connection, url: str, clock: Clock) -> None:
    """Ping Redis, retrying while it is unreachable; CannotRun if it stays so."""
    where = address(url)
    try:
        await _retrying(redis.ping, (StorageError, OSError), f"Redis at {where}", clock)
    except (StorageError, OSError) as exc:
        raise CannotRun(f"cannot start: Redis at {where} is unreachable ({_reason(exc)}); "
                        "check REDIS_URL and that Redis is running") from None


async def reach_telegram(bot: Bot, base_url: str, clock: Clock) -> None:
    """Initialize ``bot`` (its getMe checks the token), retrying network errors; CannotRun if that fails."""
    where = address(base_url)
    try:
        await _retrying(bot.initialize, (NetworkError, RetryAfter), f"Telegram at {where}", clock)
    except TelegramError as exc:
        await bot.shutdown()  # close the HTTP clients initialize opened
        raise CannotRun(f"cannot start: {telegram_refusal(exc, where, bot.token)}") from None


def telegram_refusal(exc: TelegramError, where: str, token: str) -> str:
    """What a failed getMe means for the operator, without the token PTB puts in the message."""
    if isinstance(exc, InvalidToken):
        cause = exc.__cause__ if isinstance(exc.__cause__, TelegramError) else exc
        if "not found" in cause.message.lower() or "404" in cause.message:
            return (f"the Telegram API at {where} answered 404 Not Found to getMe; check "
                    "TELEGRAM_API_BASE_URL (and that TELEGRAM_BOT_TOKEN is complete)")
        return ("Telegram rejected the bot token (401 Unauthorized); check TELEGRAM_BOT_TOKEN "
                "(revoked? copy it again from @BotFather)")
    if isinstance(exc, NetworkError | RetryAfter) and not isinstance(exc, BadRequest):
        return (f"cannot reach the Telegram API at {where} ({_reason(exc, token)}); check "
                "TELEGRAM_API_BASE_URL and the network")
    return f"Telegram refused getMe at {where} ({_reason(exc, token)}); check TELEGRAM_API_BASE_URL"


def _reason(exc: BaseException, secret: str = "") -> str:
    text = exc.message if isinstance(exc, TelegramError) else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    return text.replace(secret, "[redacted]") if secret else text
