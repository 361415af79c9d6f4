"""Everything the bot says to users, in English, Simplified and Traditional Chinese.

The messages live in :mod:`bot.locale` (one catalogue per language, keyed by :class:`Text`); this
module picks the catalogue from a user's Telegram ``language_code`` and formats the message.
"""

from __future__ import annotations

from typing import Literal, get_args

from bot.errors import AgentError, AgentProtocolError, AgentRejected, AgentTimeout
from bot.locale import en, zh_hans, zh_hant
from bot.locale.keys import Text

__all__ = [
    "COMMANDS",
    "LANGUAGES",
    "Language",
    "Text",
    "default_language",
    "duration",
    "for_error",
    "language_for",
    "parse_language",
    "say",
    "use_default_language",
]

Language = Literal["en", "zh-Hans", "zh-Hant"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

_CATALOGUES: dict[Language, dict[Text, str]] = {
    "en": en.TEXTS,
    "zh-Hans": zh_hans.TEXTS,
    "zh-Hant": zh_hant.TEXTS,
}

# The bot's commands in the order of Telegram's command menu, each with its description.
COMMANDS: tuple[tuple[str, Text], ...] = (
    ("start", Text.CMD_START),
    ("help", Text.CMD_HELP),
    ("ask", Text.CMD_ASK),
    ("new", Text.CMD_NEW),
    ("reset", Text.CMD_RESET),
    ("retry", Text.CMD_RETRY),
    ("stop", Text.CMD_STOP),
    ("usage", Text.CMD_USAGE),
)

_HANT_REGIONS = frozenset({"tw", "hk", "mo"})
_NAMES: dict[str, Language] = {
    "en": "en",
    "zh-hans": "zh-Hans",
    "zh-hant": "zh-Hant",
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
}

_default: Language = "en"


def use_default_language(language: Language) -> None:
    """The language for users whose Telegram client sends no ``language_code``."""
    global _default
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    _default = language


def default_language() -> Language:
    return _default


def parse_language(value: str) -> Language:
    """A configured language name: en, zh-Hans, zh-Hant (any case), or zh, zh-CN, zh-TW, zh-HK."""
    language = _NAMES.get(value.strip().lower().replace("_", "-"))
    if language is None:
        raise ValueError(f"unknown language {value!r}; expected one of {', '.join(LANGUAGES)}")
    return language


def language_for(language_code: str | None) -> Language:
    """The catalogue for a Telegram ``language_code`` (an IETF tag such as zh-hant-tw or en-US)."""
    code = (language_code or "").strip().lower().replace("_", "-")
    if not code:
        return _default
    if not code.startswith("zh"):
        return "en"
    if code.startswith("zh-hant"):
        return "zh-Hant"
    if not code.startswith("zh-hans") and not _HANT_REGIONS.isdisjoint(code.split("-")[1:]):
        return "zh-Hant"  # zh-TW, zh-HK, zh-MO (also with a dialect, as in zh-yue-HK)
    return "zh-Hans"


def say(text: Text, language_code: str | None, **values: object) -> str:
    """The message ``text`` in the user's language, with ``{placeholders}`` filled from ``values``."""
    return _CATALOGUES[language_for(language_code)][text].format(**values)


def for_error(error: AgentError, *, partial: bool) -> Text:
    """Which message explains this agent failure; ``partial`` when some text was already shown."""
    if isinstance(error, AgentRejected):
        return Text.REJECTED
    if isinstance(error, AgentTimeout):
        return Text.INTERRUPTED if partial else Text.TIMEOUT
    if isinstance(error, AgentProtocolError):
        return Text.INTERRUPTED if partial else Text.BROKEN
    return Text.INTERRUPTED if partial else Text.BUSY


_UNITS: dict[Language, tuple[str, str, str]] = {
    "en": ("h", "min", "s"),
    "zh-Hans": ("小时", "分钟", "秒"),
    "zh-Hant": ("小時", "分鐘", "秒"),
}


def duration(seconds: float, language_code: str | None) -> str:
    """A wait as people say it: "5 h 12 min", "3 min", "23 s" (or the Chinese equivalent)."""
    h, m, s = _UNITS[language_for(language_code)]
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} {h} {minutes} {m}"
    if minutes:
        return f"{minutes + (secs > 0)} {m}"
    return f"{secs} {s}"
