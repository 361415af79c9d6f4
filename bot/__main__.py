"""``yuanqi-bot [run|check|set-webhook|delete-webhook]`` (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from telegram.error import InvalidToken, TelegramError

from bot.app import delete_webhook, run, set_webhook
from bot.config import Settings
from bot.ops.check import run_checks
from bot.ops.logs import RedactSecrets, setup_logging
from bot.ops.startup import CannotRun, address, telegram_refusal
from storage import StorageError

log = logging.getLogger("bot")

T = TypeVar("T")


def load_settings() -> Settings:
    """Settings, or one clear line per problem and exit code 2."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        for error in exc.errors():
            print(f"configuration error: {_problem(error)}", file=sys.stderr)
        raise SystemExit(2) from None


def _problem(error: ErrorDetails) -> str:
    """``NAME what is wrong``: the variable and pydantic's message, never the value given."""
    name = next((str(part).upper() for part in error["loc"] if isinstance(part, str)), "")
    problem = "is not set" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
    # A rule across settings has no single name; its message names them itself.
    return f"{name} {problem}" if name else problem


def _secrets(settings: Settings) -> list[str]:
    """Every value that must never be printed: tokens, secrets and a password in REDIS_URL."""
    found = [settings.telegram_bot_token.get_secret_value(), settings.yuanqi_token.get_secret_value()]
    for optional in (settings.user_id_secret, settings.webhook_secret):
        if optional is not None:
            found.append(optional.get_secret_value())
    if password := urlsplit(settings.redis_url).password:
        found.append(password)
    return found


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop's event loop where it is installed (a quarter less CPU per answer
    than asyncio's own loop under load; see the README's performance section), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows)
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="yuanqi-bot", description=__doc__)
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "check", "set-webhook", "delete-webhook"]
    )
    command = parser.parse_args(argv).command
    settings = load_settings()
    secrets = _secrets(settings)
    setup_logging(settings.log_level, secrets, json_format=settings.log_format == "json")
    if command == "check":
        results = _run(run_checks(settings))
        for name, ok, detail in results:
            print(f"{name:<9} {'ok  ' if ok else 'FAIL'} {detail}")
        raise SystemExit(0 if all(ok for _, ok, _ in results) else 1)
    if command in ("set-webhook", "delete-webhook"):
        action = set_webhook if command == "set-webhook" else delete_webhook
        try:
            print(_run(action(settings)))
        except InvalidToken as exc:  # PTB's message for a refused token holds the token itself
            where = address(settings.telegram_api_base_url)
            print(telegram_refusal(exc, where, secrets[0]), file=sys.stderr)
            raise SystemExit(1) from None
        except TelegramError as exc:
            print(f"Telegram refused: {RedactSecrets(secrets).redact(exc.message)}", file=sys.stderr)
            raise SystemExit(1) from None
        return
    try:
        _run(_serve(settings))
    except CannotRun as exc:  # the line says what is wrong and what to check
        log.error("%s", exc)
        raise SystemExit(1) from None
    except (StorageError, OSError) as exc:
        log.error("stopped: %s", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
