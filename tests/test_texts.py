"""The message catalogues agree with each other, and language codes pick the right one."""

from __future__ import annotations

import string
from collections.abc import Iterator

import pytest

from bot import texts
from bot.locale import en, zh_hans, zh_hant
from bot.texts import COMMANDS, LANGUAGES, Language, Text, duration, language_for, parse_language, say

CATALOGUES = {"en": en.TEXTS, "zh-Hans": zh_hans.TEXTS, "zh-Hant": zh_hant.TEXTS}


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@pytest.fixture
def restore_default() -> Iterator[None]:
    before = texts.default_language()
    yield
    texts.use_default_language(before)


def test_languages_are_the_catalogues() -> None:
    assert set(LANGUAGES) == set(CATALOGUES) == {"en", "zh-Hans", "zh-Hant"}


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_every_catalogue_has_exactly_every_key(language: str) -> None:
    assert set(CATALOGUES[language]) == set(Text)


@pytest.mark.parametrize("language", ["zh-Hans", "zh-Hant"])
@pytest.mark.parametrize("key", list(Text), ids=str)
def test_placeholders_match_english(language: str, key: Text) -> None:
    assert placeholders(CATALOGUES[language][key]) == placeholders(en.TEXTS[key])


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_entries_are_nonempty_and_trimmed(language: str) -> None:
    for key, template in CATALOGUES[language].items():
        assert template and template == template.strip(), key


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_command_descriptions_fit_the_menu(language: str) -> None:
    for _, key in COMMANDS:
        assert 1 <= len(CATALOGUES[language][key]) <= 256


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_help_lists_every_command(language: str) -> None:
    for command, _ in COMMANDS:
        assert f"/{command} " in CATALOGUES[language][Text.HELP]


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_stop_button_keeps_its_symbol(language: str) -> None:
    assert CATALOGUES[language][Text.STOP_BUTTON].startswith("⏹")


def test_commands_are_the_menu() -> None:
    assert [name for name, _ in COMMANDS] == ["start", "help", "ask", "new", "reset", "retry", "stop", "usage"]
    assert [key for _, key in COMMANDS] == [key for key in Text if key.name.startswith("CMD_")]


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("zh-HK", "zh-Hant"),
        ("zh_TW", "zh-Hant"),
        ("zh-mo", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("ZH-HANT-HK", "zh-Hant"),
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-hans", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-Hans-HK", "zh-Hans"),
        ("en", "en"),
        ("en-US", "en"),
        ("ru", "en"),
        ("de-CH", "en"),
    ],
)
def test_language_for(code: str, language: Language) -> None:
    assert language_for(code) == language


@pytest.mark.usefixtures("restore_default")
@pytest.mark.parametrize("missing", ["", None, "  "])
def test_a_missing_code_follows_the_default(missing: str | None) -> None:
    texts.use_default_language("en")
    assert language_for(missing) == "en"
    texts.use_default_language("zh-Hant")
    assert language_for(missing) == "zh-Hant"
    assert say(Text.STOP_BUTTON, missing) == zh_hant.TEXTS[Text.STOP_BUTTON]
    assert language_for("ru") == "en"  # a code we have no catalogue for is English, not the default
    texts.use_default_language("zh-Hans")
    assert language_for(missing) == "zh-Hans"


@pytest.mark.usefixtures("restore_default")
def test_an_unknown_default_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown language"):
        texts.use_default_language("fr")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "language"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("zh-Hans", "zh-Hans"),
        ("zh-hans", "zh-Hans"),
        ("ZH-HANT", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh", "zh-Hans"),
        ("zh-cn", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-tw", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        (" zh_TW ", "zh-Hant"),
    ],
)
def test_parse_language_accepts(value: str, language: Language) -> None:
    assert parse_language(value) == language


@pytest.mark.parametrize("value", ["", "fr", "english", "zh-sg", "zh-Hant-TW", "en-US", "chinese"])
def test_parse_language_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="unknown language"):
        parse_language(value)


@pytest.mark.parametrize(
    ("seconds", "code", "expected"),
    [
        (5 * 3600 + 12 * 60 + 7, "en", "5 h 12 min"),
        (5 * 3600 + 12 * 60 + 7, "zh-CN", "5 小时 12 分钟"),
        (5 * 3600 + 12 * 60 + 7, "zh-TW", "5 小時 12 分鐘"),
        (150, "en", "3 min"),
        (150, "zh", "3 分钟"),
        (150, "zh-hk", "3 分鐘"),
        (180, "en", "3 min"),
        (23, "en", "23 s"),
        (23, "zh-Hans", "23 秒"),
        (23, "zh-Hant", "23 秒"),
        (0.2, "en", "1 s"),
    ],
)
def test_duration(seconds: float, code: str, expected: str) -> None:
    assert duration(seconds, code) == expected


def test_say_formats_placeholders() -> None:
    assert say(Text.TOO_LONG, "en-GB", length=5000, limit=4000) == (
        "That message is too long (5000 characters; at most 4000). Please shorten it."
    )
    assert say(Text.TOOL_PLUGIN, "zh-CN", name="天气") == "🧩 正在运行 天气 插件…"
    assert say(Text.TOOL_FAILED, "zh-TW", name="天氣") == "⚠️ 天氣 執行失敗，AI 代理會略過它繼續回答。"
    assert say(Text.TOOL_KNOWLEDGE, "en") == "🔎 Searching the knowledge base…"


def test_say_picks_the_catalogue() -> None:
    assert say(Text.RESET, "zh-hans") == "已清空对话，下一条消息将开始新的对话。"
    assert say(Text.RESET, "zh-Hant-HK") == "已重設對話，下一則訊息將開始新的對話。"
    assert say(Text.RESET, "en") == en.TEXTS[Text.RESET]


def test_text_is_reexported() -> None:
    from bot.locale.keys import Text as Key

    assert Text is Key
