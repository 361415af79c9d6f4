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

import httpx
from redis.asyncio import Redis

from bench.redis_proxy import ProxyGroup
from tests.fakes.env import fake_env
from tests.fakes.redis_server import free_port
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yuanqi import FakeYuanqi

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \S+ (WARNING|ERROR|CRITICAL) ")
WEBHOOK_SECRET = "bench-webhook-secret_0"  # a local test value


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
    return {**fake_env(telegram, yuanqi, redis_url), "LOG_LEVEL": "WARNING", **extra}


@dataclass
class BotProcess:
    """``python -m bot`` in an empty working directory (so no ``.env`` is read).

    ``webhook=True``: a replica in webhook mode on a free port of its own (``webhook_url``);
    otherwise the single long-polling process.
    """

    env: dict[str, str]
    workdir: Path
    webhook: bool = False
    name: str = "bot"
    proc: asyncio.subprocess.Process | None = None
    log_path: Path = field(init=False)
    port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"
        if self.webhook:
            self.port = free_port()
            self.env = {**self.env, "TELEGRAM_MODE": "webhook", "WEBHOOK_SECRET": WEBHOOK_SECRET,
                        "WEBHOOK_LISTEN": f"127.0.0.1:{self.port}"}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram"

    async def start(self, telegram: FakeTelegram, timeout: float = 60.0) -> float:  # noqa: ASYNC109
        """Start the bot and return once it takes updates (polling: its first getUpdates;
        webhook: /readyz answers 200); returns the start-up seconds."""
        started = time.monotonic()
        polls = len(telegram.calls_of("getUpdates"))
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", env=self.env, cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        ready = asyncio.ensure_future(
            self._ready_by_http(timeout) if self.webhook else
            telegram.wait_for(lambda: len(telegram.calls_of("getUpdates")) > polls, timeout))
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ready, exited):
            task.cancel()
        await asyncio.gather(ready, exited, return_exceptions=True)
        if self.proc.returncode is not None:
            raise BenchError(f"{self.name} exited at start (code {self.proc.returncode}):\n"
                             + self.log_tail())
        if ready.cancelled() or ready.exception() is not None:
            await self.stop()
            what = "answer /readyz" if self.webhook else "poll"
            raise BenchError(f"{self.name} did not {what} within {timeout:.0f}s:\n" + self.log_tail())
        return time.monotonic() - started

    async def _ready_by_http(self, timeout: float) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), httpx.AsyncClient(trust_env=False) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.05)

    async def metrics(self) -> dict[str, float]:
        """The replica's Prometheus samples, labels and all (``{}`` when it does not answer)."""
        if not self.webhook:
            return {}
        try:
            async with httpx.AsyncClient(trust_env=False) as http:
                text = (await http.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5)).text
        except httpx.HTTPError:
            return {}
        samples: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if line and not line.startswith("#"):
                with contextlib.suppress(ValueError):
                    samples[name] = float(value)
        return samples

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
    round_trips: int  # the bot's, counted by the proxies
    setup_round_trips: int  # of which connection handshakes
    connections: int  # connections the bot opened through the proxies
    kinds: dict[str, int]  # round trips by what they carried (CountingProxy.kind)
    per_proxy: list[int]  # round trips through each proxy (one per bot process)
    latency_marks: list[int]  # see ProxyGroup.latency_marks


class RedisCounters:
    """Commands from ``INFO commandstats`` (minus the bench's own INFO calls) and round trips
    from the counting proxies the bot processes talk to."""

    def __init__(self, redis: Redis, proxy: ProxyGroup) -> None:
        self._redis = redis
        self._proxy = proxy
        self._self_info = 1  # calibrated in calibrate()

    async def snapshot(self) -> RedisSnapshot:
        info = await self._redis.info("commandstats")
        commands = {key.removeprefix("cmdstat_"): int(value["calls"])
                    for key, value in info.items() if key.startswith("cmdstat_")}
        return RedisSnapshot(commands, self._proxy.round_trips, self._proxy.setup_round_trips,
                             self._proxy.connections, dict(self._proxy.kinds),
                             self._proxy.per_proxy_round_trips(), self._proxy.latency_marks())

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
        kinds = {name: n - before.kinds.get(name, 0) for name, n in after.kinds.items()}
        per_proxy = [n - (before.per_proxy[i] if i < len(before.per_proxy) else 0)
                     for i, n in enumerate(after.per_proxy)]
        latencies = self._proxy.latencies_since(before.latency_marks)
        return {"commands": commands, "round_trips": round_trips, "connections": connections,
                "setup_round_trips": setup, "per_proxy": per_proxy,
                "latency_ms": [round(x * 1000, 3) for x in latencies],
                "kinds": dict(sorted(((k, v) for k, v in kinds.items() if v > 0),
                                     key=lambda kv: -kv[1]))}
