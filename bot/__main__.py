"""``yuanqi-bot [run|check|set-webhook|delete-webhook]`` (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pydantic import ValidationError
from telegram.error import TelegramError

from bot.app import delete_webhook, run, set_webhook
from bot.config import Settings
from bot.ops.check import run_checks
from bot.ops.logs import setup_logging
from storage import StorageError

log = logging.getLogger("bot")


def load_settings() -> Settings:
    """Settings, or one clear line per problem and exit code 2."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            problem = "is not set" if error["type"] == "missing" else error["msg"]
            # A rule across settings has no single name; its message names them itself.
            text = f"{name} {problem}" if name else problem.removeprefix("Value error, ")
            print(f"configuration error: {text}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="yuanqi-bot", description=__doc__)
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "check", "set-webhook", "delete-webhook"]
    )
    command = parser.parse_args(argv).command
    settings = load_settings()
    secrets = [settings.telegram_bot_token.get_secret_value(), settings.yuanqi_token.get_secret_value()]
    for optional in (settings.user_id_secret, settings.webhook_secret):
        if optional is not None:
            secrets.append(optional.get_secret_value())
    try:
        setup_logging(settings.log_level, secrets, json_format=settings.log_format == "json")
    except ValueError as exc:
        print(f"configuration error: LOG_LEVEL {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if command == "check":
        results = asyncio.run(run_checks(settings))
        for name, ok, detail in results:
            print(f"{name:<9} {'ok  ' if ok else 'FAIL'} {detail}")
        raise SystemExit(0 if all(ok for _, ok, _ in results) else 1)
    if command in ("set-webhook", "delete-webhook"):
        action = set_webhook if command == "set-webhook" else delete_webhook
        try:
            print(asyncio.run(action(settings)))
        except TelegramError as exc:
            print(f"Telegram refused: {exc.message}", file=sys.stderr)
            raise SystemExit(1) from None
        return
    try:
        asyncio.run(_serve(settings))
    except (StorageError, OSError) as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
