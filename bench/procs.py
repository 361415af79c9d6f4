"""The bot as a real subprocess, its CPU and memory from /proc, and Redis's own counters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.redis_proxy import CountingProxy
from tests.fakes.telegram import BOT_TOKEN, FakeTelegram
from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, FakeYuanqi

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \S+ (WARNING|ERROR|CRITICAL) ")


class BenchError(RuntimeError):
    """The bench itself could not do its job (the bot did not start, for example)."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (from /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bot_env(telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str,
            extra: dict[str, str]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "YUANQI_TOKEN": YUANQI_TOKEN,
        "YUANQI_ASSISTANT_ID": ASSISTANT_ID,
        "YUANQI_API_URL": yuanqi.url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


@dataclass
class BotProcess:
    """``python -m bot`` in an empty working directory (so no ``.env`` is read)."""

    env: dict[str, str]
    workdir: Path
    proc: asyncio.subprocess.Process | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "bot.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, telegram: FakeTelegram, timeout: float = 60.0) -> float:  # noqa: ASYNC109
        """Start the bot and return once it polls for updates; returns the start-up seconds."""
        started = time.monotonic()
        polls = len(telegram.calls_of("getUpdates"))
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", env=self.env, cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        ready = asyncio.ensure_future(
            telegram.wait_for(lambda: len(telegram.calls_of("getUpdates")) > polls, timeout))
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ready, exited):
            task.cancel()
        await asyncio.gather(ready, exited, return_exceptions=True)
        if self.proc.returncode is not None:
            raise BenchError(f"the bot exited at start (code {self.proc.returncode}):\n"
                             + self.log_tail())
        if ready.cancelled() or ready.exception() is not None:
            await self.stop()
            raise BenchError(f"the bot did not poll within {timeout:.0f}s:\n" + self.log_tail())
        return time.monotonic() - started

    async def stop(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, then wait (the fakes keep serving meanwhile); SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss(self) -> float:
        return peak_rss_mb(self.pid)

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def problems(self) -> list[str]:
        """The bot's WARNING/ERROR/CRITICAL log lines (the first line of each)."""
        return [line for line in self.log_text().splitlines() if _LOG_LINE.match(line)]


@dataclass(frozen=True)
class RedisSnapshot:
    commands: dict[str, int]  # command name -> calls (INFO commandstats)
    round_trips: int  # the bot's, counted by the proxy
    setup_round_trips: int  # of which connection handshakes
    connections: int  # connections the bot opened through the proxy


class RedisCounters:
    """Commands from ``INFO commandstats`` (minus the bench's own INFO calls) and round trips
    from the counting proxy the bot talks to."""

    def __init__(self, redis: Redis, proxy: CountingProxy) -> None:
        self._redis = redis
        self._proxy = proxy
        self._self_info = 1  # calibrated in calibrate()

    async def snapshot(self) -> RedisSnapshot:
        info = await self._redis.info("commandstats")
        commands = {key.removeprefix("cmdstat_"): int(value["calls"])
                    for key, value in info.items() if key.startswith("cmdstat_")}
        return RedisSnapshot(commands, self._proxy.round_trips, self._proxy.setup_round_trips,
                             self._proxy.connections)

    async def calibrate(self) -> None:
        """Measure what one snapshot adds to INFO's count (the snapshot itself is not in it)."""
        first = await self.snapshot()
        second = await self.snapshot()
        self._self_info = second.commands.get("info", 0) - first.commands.get("info", 0)

    def delta(self, before: RedisSnapshot, after: RedisSnapshot) -> dict[str, Any]:
        commands = {name: calls - before.commands.get(name, 0)
                    for name, calls in after.commands.items()}
        commands["info"] = commands.get("info", 0) - self._self_info
        commands = {k: v for k, v in sorted(commands.items()) if v > 0}
        round_trips = after.round_trips - before.round_trips
        connections = after.connections - before.connections
        setup = after.setup_round_trips - before.setup_round_trips
        return {"commands": commands, "round_trips": round_trips, "connections": connections,
                "setup_round_trips": setup}
