"""Settings validation, and the command line (`python -m bot [check]`) run as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.__main__ import load_settings
from bot.config import Settings
from tests.fakes.telegram import BOT_TOKEN, FakeTelegram
from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, FakeYuanqi

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "telegram_bot_token": BOT_TOKEN,
    "yuanqi_token": YUANQI_TOKEN,
    "yuanqi_assistant_id": ASSISTANT_ID,
}


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the environment the tests happen to run in."""
    fields = set(Settings.model_fields)
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **{**REQUIRED, **values})  # type: ignore[arg-type]


# --- Settings -------------------------------------------------------------------------------


def test_defaults() -> None:
    """With only the required values, history, TTL and URLs take their documented defaults."""
    settings = make()
    assert settings.history_max_messages == 40
    assert settings.history_max_turns == 19
    assert settings.history_ttl_seconds == 30 * 24 * 60 * 60
    assert settings.telegram_api_base_url == "https://api.telegram.org"
    assert settings.yuanqi_api_url == "https://yuanqi.tencent.com/openapi/v1/agent/chat/completions"
    assert settings.user_id_secret is None


@pytest.mark.parametrize(
    ("max_messages", "turns"),
    [
        pytest.param(1, 0, id="1"),
        pytest.param(2, 0, id="2"),
        pytest.param(3, 1, id="3"),
        pytest.param(5, 2, id="5"),
        pytest.param(40, 19, id="40"),
    ],
)
def test_history_max_turns_leaves_room_for_the_question(max_messages: int, turns: int) -> None:
    """Past turns kept are the pairs that fit in max_messages beside the new question."""
    assert make(history_max_messages=max_messages).history_max_turns == turns


@pytest.mark.parametrize("max_messages", [0, 41], ids=["zero", "over-api-limit"])
def test_history_max_messages_is_bounded(max_messages: int) -> None:
    """A message budget the API cannot take is refused at start-up."""
    with pytest.raises(ValidationError, match="history_max_messages"):
        make(history_max_messages=max_messages)


def test_ttl_days_become_seconds() -> None:
    """A fractional TTL in days is converted to whole seconds for Redis."""
    assert make(history_ttl_days=0.5).history_ttl_seconds == 43_200


@pytest.mark.parametrize(
    ("token", "bot_id"),
    [
        pytest.param(BOT_TOKEN, 123456, id="fake"),
        pytest.param("7000000001:AAH-x_y", 7000000001, id="long-id"),
    ],
)
def test_bot_id_comes_from_the_token(token: str, bot_id: int) -> None:
    """The bot id is the number before the colon in the BotFather token."""
    assert make(telegram_bot_token=token).bot_id == bot_id


@pytest.mark.parametrize("field", ["telegram_api_base_url", "yuanqi_api_url"])
@pytest.mark.parametrize(
    "url",
    ["api.telegram.org", "ftp://example.com", "", "127.0.0.1:8080"],
    ids=["no-scheme", "ftp", "empty", "host-port"],
)
def test_urls_must_be_http(field: str, url: str) -> None:
    """A URL without http:// or https:// is refused, naming the setting."""
    with pytest.raises(ValidationError, match=field):
        make(**{field: url})


@pytest.mark.parametrize("field", ["telegram_api_base_url", "yuanqi_api_url"])
def test_url_trailing_slash_is_dropped(field: str) -> None:
    """A trailing slash is removed so paths can be appended safely."""
    assert getattr(make(**{field: "http://127.0.0.1:8081/api/"}), field) == "http://127.0.0.1:8081/api"


@pytest.mark.parametrize("field", ["telegram_bot_token", "yuanqi_token"])
@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "spaces"])
def test_blank_tokens_are_rejected(field: str, value: str) -> None:
    """An empty or whitespace-only token is a configuration error."""
    with pytest.raises(ValidationError, match=field):
        make(**{field: value})


@pytest.mark.parametrize(
    "token", ["abc:def", "123456", "123456:", ":secret"], ids=["letters", "no-colon", "no-secret", "no-id"]
)
def test_bot_token_must_look_like_botfather_token(token: str) -> None:
    """A bot token not shaped <digits>:<secret> is refused, and the error does not echo it."""
    with pytest.raises(ValidationError, match="telegram_bot_token") as info:
        make(telegram_bot_token=token)
    assert "must look like" in str(info.value)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upper-case environment variables fill the settings."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("YUANQI_TOKEN", YUANQI_TOKEN)
    monkeypatch.setenv("YUANQI_ASSISTANT_ID", ASSISTANT_ID)
    monkeypatch.setenv("HISTORY_MAX_MESSAGES", "7")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.bot_id, settings.history_max_turns) == (123456, 3)


# --- every setting: one line, exit code 2 ---------------------------------------------------

#: Values no setting should take silently: empty, blank, words, signs, huge, non-finite, bad URLs.
NONSENSE = ["", " ", "not-a-number", "-1", "0", "inf", "nan", "99999999999999999999999", "x:y",
            "http://", "ftp://example.com", "8080", "True?"]
#: Values no message has reason to contain: seeing one would mean the input is echoed.
ECHOED = {"not-a-number", "99999999999999999999999", "ftp://example.com", "True?"}
#: Free-form settings: any string is a valid value.
FREE_FORM = {"user_id_secret"}


def cli_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               env: dict[str, str]) -> list[str] | Settings:
    """What ``python -m bot`` does with this environment: its error lines, or the settings."""
    for name, value in {**{k.upper(): v for k, v in REQUIRED.items()}, **env}.items():
        monkeypatch.setenv(name, value)
    try:
        settings = load_settings()
    except SystemExit as exc:
        assert exc.code == 2
        out, err = capsys.readouterr()
        assert out == ""
        return err.strip().splitlines()
    finally:
        for name in env:
            monkeypatch.delenv(name)
    return settings


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_refuses_nonsense_in_one_line(
    field: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Each setting either takes a value (and the derived figures still compute) or refuses it in one
    line naming the variable, without echoing the value; only free-form ones take everything."""
    monkeypatch.chdir(tmp_path)  # no .env
    name = field.upper()
    refused = 0
    for value in NONSENSE:
        result = cli_errors(monkeypatch, capsys, {name: value})
        if isinstance(result, Settings):
            assert result.bot_id > 0 and result.history_max_turns >= 0 and result.history_ttl_seconds > 0
            continue
        refused += 1
        [line] = result
        assert line.startswith(f"configuration error: {name} "), line
        assert "Value error" not in line
        if value in ECHOED:
            assert value not in line, line
    assert refused or field in FREE_FORM


def test_several_problems_are_one_line_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A bad LOG_LEVEL is reported with the other problems, each on its own line."""
    monkeypatch.chdir(tmp_path)
    lines = cli_errors(monkeypatch, capsys, {"LOG_LEVEL": "verbose", "MEDIA_LISTEN": "8080",
                                             "REDIS_URL": "localhost:6379"})
    assert lines == [
        "configuration error: REDIS_URL must start with redis://, rediss:// or unix://",
        "configuration error: LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL",
        "configuration error: MEDIA_LISTEN must be host:port, e.g. 0.0.0.0:8080",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("TELEGRAM_BOT_TOKEN", "123456:has spaces-SECRET", id="token-with-space"),
        pytest.param("TELEGRAM_API_BASE_URL", "https://", id="url-without-host"),
        pytest.param("WEBHOOK_URL", "http://bot.example/telegram", id="webhook-not-https"),
        pytest.param("ALLOWED_CHAT_IDS", "-1001, team", id="id-list-with-a-word"),
        pytest.param("HEALTH_LISTEN", "0.0.0.0:70000", id="port-out-of-range"),
    ],
)
def test_values_that_used_to_fail_later_are_refused_at_start(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Values that once passed validation and failed at start (or at Telegram) are refused up front."""
    monkeypatch.chdir(tmp_path)
    [line] = cli_errors(monkeypatch, capsys, {name: value})
    assert line.startswith(f"configuration error: {name} ")
    assert "SECRET" not in line


def test_log_level_is_case_insensitive() -> None:
    """LOG_LEVEL=debug is DEBUG."""
    assert make(log_level=" debug").log_level == "DEBUG"


# --- the command line -----------------------------------------------------------------------


async def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run ``python -m bot *args`` with only PATH and ``env``, without blocking the fakes' loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


FULL_ENV = {
    "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
    "YUANQI_TOKEN": YUANQI_TOKEN,
    "YUANQI_ASSISTANT_ID": ASSISTANT_ID,
}


@pytest.mark.parametrize("command", [[], ["check"]], ids=["run", "check"])
@pytest.mark.parametrize(
    ("remove", "extra", "named"),
    [
        pytest.param(["TELEGRAM_BOT_TOKEN"], {}, ["TELEGRAM_BOT_TOKEN"], id="missing-bot-token"),
        pytest.param(
            list(FULL_ENV),
            {},
            ["TELEGRAM_BOT_TOKEN", "YUANQI_TOKEN", "YUANQI_ASSISTANT_ID"],
            id="nothing-set",
        ),
        pytest.param(
            [], {"TELEGRAM_API_BASE_URL": "api.telegram.org"}, ["TELEGRAM_API_BASE_URL"], id="bad-url"
        ),
        pytest.param(
            [],
            {"TELEGRAM_BOT_TOKEN": "not-a-token-SECRET-VALUE"},
            ["TELEGRAM_BOT_TOKEN"],
            id="bad-token-shape",
        ),
        pytest.param([], {"HISTORY_MAX_MESSAGES": "many"}, ["HISTORY_MAX_MESSAGES"], id="bad-number"),
        pytest.param([], {"TELEGRAM_MODE": "webhook"}, ["WEBHOOK_SECRET"], id="webhook-without-secret"),
        pytest.param([], {"WEBHOOK_SECRET": "has spaces"}, ["WEBHOOK_SECRET"], id="bad-webhook-secret"),
        pytest.param([], {"WEBHOOK_LISTEN": "8080"}, ["WEBHOOK_LISTEN"], id="listen-without-host-port"),
        pytest.param([], {"LOG_LEVEL": "verbose"}, ["LOG_LEVEL"], id="bad-log-level"),
        pytest.param([], {"LOG_LEVEL": "verbose", "HISTORY_MAX_MESSAGES": "0"},
                     ["HISTORY_MAX_MESSAGES", "LOG_LEVEL"], id="bad-log-level-and-more"),
        pytest.param([], {"MEDIA_LISTEN": "8080"}, ["MEDIA_LISTEN"], id="media-listen-without-port"),
        pytest.param([], {"REDIS_URL": "localhost:6379"}, ["REDIS_URL"], id="redis-url-without-scheme"),
        pytest.param([], {"LOG_FORMAT": "xml"}, ["LOG_FORMAT"], id="bad-log-format"),
        pytest.param([], {"SHUTDOWN_GRACE_SECONDS": "60"}, ["SHUTDOWN_GRACE_SECONDS"], id="grace-too-long"),
    ],
)
async def test_configuration_errors_are_one_line_each(
    tmp_path: Path, command: list[str], remove: list[str], extra: dict[str, str], named: list[str]
) -> None:
    """A bad configuration prints one line per problem naming the variable, exits 2, with no traceback."""
    env = {k: v for k, v in FULL_ENV.items() if k not in remove} | extra
    code, out, err = await run_cli(command, env, tmp_path)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == len(named), err
    for line, variable in zip(lines, named, strict=True):
        assert variable in line
    for secret in (BOT_TOKEN, YUANQI_TOKEN, "not-a-token-SECRET-VALUE"):
        assert secret not in out + err


def _statuses(out: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in out.strip().splitlines()}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_env(telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str) -> dict[str, str]:
    return FULL_ENV | {
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "YUANQI_API_URL": yuanqi.url,
        "REDIS_URL": redis_url,
    }


async def test_check_against_working_services(
    tmp_path: Path, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str
) -> None:
    """check reports redis, telegram and yuanqi as ok, exits 0, and probes Yuanqi with an empty request."""
    code, out, err = await run_cli(["check"], _check_env(telegram, yuanqi, redis_url), tmp_path)
    assert _statuses(out) == {"redis": "ok", "telegram": "ok", "yuanqi": "ok"}, out + err
    assert code == 0
    assert [r.body.get("messages") for r in yuanqi.requests if r.body is not None] == [[]]
    assert BOT_TOKEN not in out + err
    assert YUANQI_TOKEN not in out + err


@pytest.mark.parametrize(
    ("broken", "override"),
    [
        pytest.param("yuanqi", {"YUANQI_TOKEN": "yq-wrong-token-VALUE"}, id="wrong-yuanqi-token"),
        pytest.param(
            "telegram", {"TELEGRAM_BOT_TOKEN": "654321:WRONG-bot-token-VALUE"}, id="wrong-bot-token"
        ),
        pytest.param("redis", {"REDIS_URL": "redis://127.0.0.1:{closed_port}/0"}, id="redis-closed-port"),
    ],
)
async def test_check_reports_the_broken_dependency(
    tmp_path: Path,
    telegram: FakeTelegram,
    yuanqi: FakeYuanqi,
    redis_url: str,
    broken: str,
    override: dict[str, str],
) -> None:
    """One unusable dependency gives a FAIL line for it alone and exit code 1, never echoing a token."""
    port = _closed_port()
    env = _check_env(telegram, yuanqi, redis_url) | {
        k: v.format(closed_port=port) for k, v in override.items()
    }
    code, out, err = await run_cli(["check"], env, tmp_path)
    expected = {"redis": "ok", "telegram": "ok", "yuanqi": "ok"} | {broken: "FAIL"}
    assert _statuses(out) == expected, out + err
    assert code == 1
    assert "Traceback" not in err
    for token in (BOT_TOKEN, YUANQI_TOKEN, env["TELEGRAM_BOT_TOKEN"], env["YUANQI_TOKEN"]):
        assert token not in out + err
