"""``yuanqi-bot [run|check]`` (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.app import run
from bot.check import run_checks
from bot.config import Settings
from bot.logs import setup_logging

log = logging.getLogger("bot")


def load_settings() -> Settings:
    """Settings, or one clear line per problem and exit code 2."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "configuration"
            problem = "is not set" if error["type"] == "missing" else error["msg"]
            print(f"configuration error: {name} {problem}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="yuanqi-bot", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "check"])
    command = parser.parse_args(argv).command
    settings = load_settings()
    secrets = [settings.telegram_bot_token.get_secret_value(), settings.yuanqi_token.get_secret_value()]
    if settings.user_id_secret:
        secrets.append(settings.user_id_secret.get_secret_value())
    setup_logging(settings.log_level, secrets)
    if command == "check":
        results = asyncio.run(run_checks(settings))
        for name, ok, detail in results:
            print(f"{name:<9} {'ok  ' if ok else 'FAIL'} {detail}")
        raise SystemExit(0 if all(ok for _, ok, _ in results) else 1)
    try:
        asyncio.run(_serve(settings))
    except (RedisError, OSError) as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
