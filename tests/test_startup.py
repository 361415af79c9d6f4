"""Start-up and fatal failures of ``python -m bot``, run as a real process: one clear line, no secret."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from tests.fakes.redis_server import free_port
from tests.fakes.telegram import BOT_TOKEN, FakeTelegram
from tests.fakes.yuanqi import FakeYuanqi
from tests.replicas import BotProcess, bot_env

ROOT = Path(__file__).resolve().parents[1]
REVOKED = "654321:REVOKED-bot-token-VALUE-0123456789"
#: One log record of the text format: time, level, logger, message, all on one line.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: \S")


async def run_bot(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``python -m bot *args`` until it exits (killed after ``timeout``); its code and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        output, _ = await proc.communicate()
        raise AssertionError(f"still running after {timeout}s:\n{output.decode()}") from None
    assert proc.returncode is not None
    return proc.returncode, output.decode("utf-8", "replace")


def assert_clean(output: str, *secrets: str) -> list[str]:
    """No traceback, no secret, every line one log record; the lines."""
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output, output
    lines = output.strip().splitlines()
    assert all(LOG_LINE.match(line) for line in lines), output
    return lines


def _closed_port_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}"


async def test_rejected_token_is_one_line(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, tmp_path: Path
) -> None:
    """A token Telegram answers 401 to stops the start with one line naming TELEGRAM_BOT_TOKEN."""
    env = bot_env(telegram, yuanqi, redis_url, TELEGRAM_BOT_TOKEN=REVOKED)
    code, output = await run_bot(env, tmp_path)
    assert code == 1
    [line] = assert_clean(output, REVOKED, REVOKED.partition(":")[2])
    assert "TELEGRAM_BOT_TOKEN" in line
    assert "rejected" in line


async def test_wrong_api_address_is_one_line(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, tmp_path: Path
) -> None:
    """An API address that answers 404 to getMe stops the start with one line naming it."""
    env = bot_env(telegram, yuanqi, redis_url, TELEGRAM_API_BASE_URL=f"{telegram.base_url}/not-telegram")
    code, output = await run_bot(env, tmp_path)
    assert code == 1
    [line] = assert_clean(output, BOT_TOKEN, BOT_TOKEN.partition(":")[2])
    assert "TELEGRAM_API_BASE_URL" in line
    assert "404" in line


@pytest.mark.parametrize("secret", [None, "fixed-user-id-secret"], ids=["secret-in-redis", "secret-set"])
async def test_unreachable_redis_is_retried_then_one_line(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, tmp_path: Path, secret: str | None
) -> None:
    """Redis refusing connections is retried with backoff, then the start fails naming REDIS_URL."""
    extra = {"USER_ID_SECRET": secret} if secret else {}
    env = bot_env(telegram, yuanqi, f"redis://:redis-PASSWORD-x@127.0.0.1:{free_port()}/0", **extra)
    code, output = await run_bot(env, tmp_path)
    assert code == 1
    lines = assert_clean(output, "redis-PASSWORD-x", BOT_TOKEN)
    *retries, last = lines
    assert len(retries) == 3
    assert all("WARNING" in line and "trying again" in line for line in retries)
    assert "REDIS_URL" in last
    assert telegram.calls == []  # Redis comes first: nothing was asked of Telegram


async def test_unreachable_telegram_is_retried_then_one_line(
    yuanqi: FakeYuanqi, redis_url: str, tmp_path: Path, telegram: FakeTelegram
) -> None:
    """A Telegram address refusing connections is retried with backoff, then named in one line."""
    env = bot_env(telegram, yuanqi, redis_url, TELEGRAM_API_BASE_URL=_closed_port_url("http"))
    code, output = await run_bot(env, tmp_path)
    assert code == 1
    *retries, last = assert_clean(output, BOT_TOKEN, BOT_TOKEN.partition(":")[2])
    assert len(retries) == 3
    assert all("trying again" in line for line in retries)
    assert "TELEGRAM_API_BASE_URL" in last


async def test_revoked_token_while_running_exits_non_zero(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, tmp_path: Path
) -> None:
    """When Telegram stops accepting the token while polling, the process exits non-zero (so it is
    restarted) with a line naming TELEGRAM_BOT_TOKEN and no secret."""
    replica = BotProcess("poller", bot_env(telegram, yuanqi, redis_url), tmp_path, webhook=False)
    await replica.start()
    telegram.token = "999999:some-other-token-entirely"  # every call is now 401 Unauthorized
    telegram.push_update({"my_chat_member": {  # ends the running long poll at once
        "chat": {"id": 5, "type": "private", "first_name": "Ann"},
        "from": {"id": 5, "is_bot": False, "first_name": "Ann"}, "date": 0,
        "old_chat_member": {"status": "member", "user": telegram.bot_user()},
        "new_chat_member": {"status": "kicked", "user": telegram.bot_user(), "until_date": 0},
    }})
    assert replica.proc is not None
    code = await asyncio.wait_for(replica.proc.wait(), 30)
    output = replica.log_text()
    assert code == 1, output
    assert_clean(output, BOT_TOKEN.partition(":")[2])
    assert "TELEGRAM_BOT_TOKEN" in output.strip().splitlines()[-1]


async def test_set_webhook_with_a_rejected_token_names_it_without_echoing_it(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, tmp_path: Path
) -> None:
    """``set-webhook`` with a revoked token fails in one line that does not contain the token."""
    env = bot_env(telegram, yuanqi, redis_url, TELEGRAM_BOT_TOKEN=REVOKED,
                  WEBHOOK_URL="https://bot.example/telegram", WEBHOOK_SECRET="s3cret")
    code, output = await run_bot(env, tmp_path, "set-webhook")
    assert code == 1
    assert "Traceback" not in output
    assert REVOKED.partition(":")[2] not in output
    [line] = output.strip().splitlines()
    assert "TELEGRAM_BOT_TOKEN" in line

