"""Redis going away and coming back: /readyz follows it, users are told, the bot recovers by itself."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import _free_port
from tests.fakes.redis_server import wait_listening
from tests.harness import RunningBot

CHAT = 5001
STORAGE = "My memory store is unavailable, so I can't answer right now. Please try again later."


class OwnRedis:
    """A redis-server this test may stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server is not None
        self._proc = subprocess.Popen(  # noqa: S603 - a fixed local binary
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._dir.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port, self._proc)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


async def ready_status(port: int) -> int:
    async with httpx.AsyncClient(trust_env=False) as http:
        return (await http.get(f"http://127.0.0.1:{port}/readyz", timeout=5)).status_code


async def wait_status(port: int, status: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while await ready_status(port) != status:  # noqa: ASYNC110 - polling another server
            await asyncio.sleep(0.1)


async def test_redis_outage_turns_readiness_off_and_the_bot_recovers(make_bot, own_redis: OwnRedis) -> None:  # type: ignore[no-untyped-def]
    """With Redis gone, /readyz says 503 and a user is told; once it is back, both recover."""
    port = _free_port()
    bot: RunningBot = await make_bot(redis_url=own_redis.url, health_listen=f"127.0.0.1:{port}")
    assert await ready_status(port) == 200
    own_redis.stop()
    await wait_status(port, 503)
    bot.say(CHAT, "anyone there?")
    await bot.wait_text(CHAT, STORAGE)
    own_redis.start()
    await wait_status(port, 200)
    bot.say(CHAT, "and now?")
    await bot.wait_text(CHAT, "Echo: and now?", timeout=20)
