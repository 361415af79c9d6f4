"""Telegram's command menu: the bot's commands, described in each user's language.

``setMyCommands`` takes a two-letter language code, so Telegram cannot tell Simplified from
Traditional Chinese readers there: "zh" gets the default language's script when that is
Traditional, else Simplified. Users with no matching code see the default language's menu.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand
from telegram.error import TelegramError

from bot.texts import COMMANDS, Language, default_language, say

log = logging.getLogger(__name__)


def menus(default: Language) -> list[tuple[str | None, Language]]:
    """(language_code for setMyCommands, catalogue) pairs; None is every other user's menu."""
    chinese: Language = "zh-Hant" if default == "zh-Hant" else "zh-Hans"
    return [(None, default), ("en", "en"), ("zh", chinese)]


async def register_commands(bot: Bot) -> None:
    """Show the commands in Telegram's menu; a failure is logged, the bot works without it."""
    for code, language in menus(default_language()):
        commands = [BotCommand(name, say(text, language)) for name, text in COMMANDS]
        try:
            await bot.set_my_commands(commands, language_code=code)
        except TelegramError as exc:
            log.warning("could not register the command menu (%s): %s", code or "default", exc.message)
            return
