"""Logging set-up: text or JSON lines, quiet HTTP libraries, and secrets redacted from every record."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

#: Anything shaped like a Telegram bot token, e.g. inside a file or API URL.
_BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
REDACTED = "[redacted]"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces known secrets and bot-token-shaped strings in the final message and traceback.

    The redacted traceback is folded into the message, or with ``fold_traceback=False`` left in
    ``record.exc_text`` for a formatter that shows it apart; either way ``exc_info`` is cleared.
    """

    def __init__(self, secrets: Iterable[str], *, fold_traceback: bool = True) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._fold = fold_traceback

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _BOT_TOKEN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(formatted)
            record.exc_info = None
            if self._fold:
                record.msg = f"{message}\n{record.exc_text}"
                record.exc_text = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def parse_level(level: str) -> int:
    """The numeric level for a name such as ``"info"``; ``ValueError`` naming it if there is none."""
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number


def setup_logging(level: str, secrets: Iterable[str], *, json_format: bool = False) -> None:
    """Send every record to stderr, redacted, as text (default) or JSON lines."""
    number = parse_level(level)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(_TEXT_FORMAT))
    handler.addFilter(RedactSecrets(secrets, fold_traceback=not json_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    for noisy in ("apscheduler",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
