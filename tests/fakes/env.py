"""The environment that points a real bot process at the fakes (tests and bench share it)."""

from __future__ import annotations

import os

from tests.fakes.telegram import BOT_TOKEN, FakeTelegram
from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, FakeYuanqi


def fake_env(telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str) -> dict[str, str]:
    """Only PATH from the caller's environment: no setting leaks in from the machine."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "YUANQI_TOKEN": YUANQI_TOKEN,
        "YUANQI_ASSISTANT_ID": ASSISTANT_ID,
        "YUANQI_API_URL": yuanqi.url,
        "REDIS_URL": redis_url,
    }
