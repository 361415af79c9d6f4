"""logs: text (default) or JSON-line output on stderr, with secrets redacted from messages and tracebacks."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.ops.logs import REDACTED, setup_logging

SECRET = "yq-secret-token-5f2a"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
_NOISY = ("httpx", "httpcore", "apscheduler")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Puts the root logger (and the quietened libraries) back as they were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.NOTSET)


def fail_with_secret() -> None:
    raise RuntimeError(f"upstream said {SECRET} and {BOT_TOKEN}")


def log_failure(logger: logging.Logger) -> None:
    try:
        fail_with_secret()
    except RuntimeError:
        logger.exception("call with %s failed", SECRET)


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_json_lines_carry_time_level_logger_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    """In JSON mode each record is one JSON object with an ISO 8601 UTC time and no ``exc`` without one."""
    setup_logging("INFO", [SECRET], json_format=True)
    logging.getLogger("bot.test").info("hello %s, 你好\nsecond line", "world")
    (entry,) = json_lines(capsys.readouterr().err)
    assert entry.keys() == {"time", "level", "logger", "message"}
    assert datetime.fromisoformat(entry["time"]).utcoffset() == timedelta(0)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bot.test"
    assert entry["message"] == "hello world, 你好\nsecond line"


def test_json_redacts_secrets_in_message_and_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """A logged exception lands in ``exc``, apart from the message, with every secret redacted in both."""
    setup_logging("INFO", [SECRET], json_format=True)
    log_failure(logging.getLogger("bot.test"))
    err = capsys.readouterr().err
    (entry,) = json_lines(err)
    assert entry["level"] == "ERROR"
    assert entry["message"] == f"call with {REDACTED} failed"
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert f"RuntimeError: upstream said {REDACTED} and {REDACTED}" in entry["exc"]
    assert SECRET not in err
    assert BOT_TOKEN.split(":")[1] not in err


def test_json_respects_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    """Records below the configured level are not written."""
    setup_logging("warning", [], json_format=True)
    logger = logging.getLogger("bot.test")
    logger.info("quiet")
    logger.warning("loud")
    assert [entry["message"] for entry in json_lines(capsys.readouterr().err)] == ["loud"]


def test_text_format_is_the_default_and_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    """Text mode prints "time LEVEL logger: message" with the redacted traceback folded in after it."""
    setup_logging("INFO", [SECRET])
    logger = logging.getLogger("bot.test")
    logger.warning("plain %d", 1)
    log_failure(logger)
    err = capsys.readouterr().err
    lines = err.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(rf"{stamp} WARNING bot\.test: plain 1", lines[0])
    assert re.fullmatch(rf"{stamp} ERROR bot\.test: call with \[redacted\] failed", lines[1])
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == f"RuntimeError: upstream said {REDACTED} and {REDACTED}"
    assert SECRET not in err


@pytest.mark.parametrize(("name", "level"), [("debug", logging.DEBUG), ("INFO", logging.INFO),
                                              (" Warning ", logging.WARNING)], ids=["lower", "upper", "padded"])
def test_level_names_are_case_insensitive(name: str, level: int) -> None:
    """Level names are accepted in any case and with stray spaces."""
    setup_logging(name, [])
    assert logging.getLogger().level == level


@pytest.mark.parametrize("name", ["verbose", "", "10"], ids=["word", "empty", "number"])
def test_an_unknown_level_is_rejected_naming_it(name: str) -> None:
    """An unknown level raises ValueError quoting the name, before the root logger is touched."""
    root = logging.getLogger()
    before = root.handlers[:]
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        setup_logging(name, [], json_format=True)
    assert root.handlers == before
