"""Real bot processes (``python -m bot``) against the fakes and one Redis, for multi-replica tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.env import fake_env
from tests.fakes.redis_server import free_port
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yuanqi import FakeYuanqi

SECRET = "replica-test-secret_123"

#: The ``launch`` fixture (tests/conftest.py): ``await launch(n, webhook=True, **settings)``.
Launch = Callable[..., Coroutine[Any, Any, list["BotProcess"]]]


def texts(telegram: FakeTelegram, chat: int) -> list[str]:
    return [m.text for m in telegram.bot_messages(chat)]


def bot_env(telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, **extra: str) -> dict[str, str]:
    """The fakes' environment with quick settings for tests (a 2 s lease, 50 ms edit interval)."""
    return {
        **fake_env(telegram, yuanqi, redis_url),
        "LOG_LEVEL": "INFO",
        "EDIT_INTERVAL_PRIVATE": "0.05",
        "EDIT_INTERVAL_GROUP": "0.1",
        "STREAM_MODE": "edit",  # a test of drafts asks for them
        "GROUP_HOLD_CHARS": "0",
        "YUANQI_FIRST_BYTE_TIMEOUT": "10",
        "YUANQI_TOTAL_TIMEOUT": "30",
        "CHAT_LEASE_SECONDS": "2",
        "ALBUM_WAIT": "0.3",
        **extra,
    }


class BotProcess:
    """One replica: a subprocess with its own port, logging to a file in ``workdir``."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, *, webhook: bool = True) -> None:
        self.name = name
        self.port = free_port()
        listen = f"127.0.0.1:{self.port}"
        self.env = {**env, **({"TELEGRAM_MODE": "webhook", "WEBHOOK_LISTEN": listen, "WEBHOOK_SECRET": SECRET}
                              if webhook else {"HEALTH_LISTEN": listen})}
        self.log_path = workdir / f"{name}.log"
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/telegram"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 30.0) -> None:
        """Start and return once /readyz answers 200."""
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", env=self.env, cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise AssertionError(f"{self.name} exited at start:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/readyz", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} was not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def terminate(self, timeout: float = 40.0) -> int:
        """SIGTERM, and the exit code (SIGKILL after ``timeout``, which then fails the caller)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.log_tail()}") from None

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await http.get(f"{self.url}{path}", timeout=5)

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def pid_of_holder(lease_token: bytes | str | None) -> int | None:
    """The process id inside a lease token (``<host>-<pid>-<hex>:<hex>``)."""
    if lease_token is None:
        return None
    token = lease_token.decode() if isinstance(lease_token, bytes) else lease_token
    replica = token.rsplit(":", 1)[0]
    return int(replica.rsplit("-", 2)[1])
