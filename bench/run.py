"""Run the scenarios against the real bot process and report the figures.

    python -m bench                       # every scenario but scaling, full size (~12 minutes)
    python -m bench --scenario scaling    # CPU per answer against answer size and chat count
    python -m bench --scenario burst      # one scenario (repeat the option for more)
    python -m bench --quick               # tiny versions, a few seconds (the smoke test)
    python -m bench --json out.json       # also write every figure as JSON ("--json" alone: stdout)

Per scenario the bench starts fresh fakes (the Telegram one enforcing rate limits), flushes Redis,
starts a fresh ``python -m bot``, waits for its first getUpdates, answers one warm-up turn in a
chat of its own, and only then starts measuring (so CPU, Redis and call counts leave start-up and
the first-turn warm-up out). The bot is stopped with SIGTERM after each scenario.

The ``single``, ``long`` and ``load50`` scenarios run once per streaming mode, as rows
``single-edit``, ``single-draft``, ...: the bot is given ``STREAM_MODE=edit`` (the answer grows by edits of a
message) or ``STREAM_MODE=draft`` (a native draft, paced by ``DRAFT_INTERVAL``, then the final
text as real messages); ``--scenario single`` runs both, ``--scenario single-draft`` one. Other
scenarios run with the bot's default (``auto``: drafts in private chats, edits in groups).

The ``replicas`` scenario runs once per replica count, as rows ``replicas-1``, ``replicas-2``, ...:
that many ``python -m bot`` processes in webhook mode (ready once ``/readyz`` answers 200), to
which the fake Telegram POSTs updates round-robin, some of them twice; one warm-up turn each.
Every process talks to Redis through a counting proxy of its own; CPU and round trips are summed.

``scaling`` runs only when named (``--scenario scaling``, about 4 minutes; one point of it:
``--scenario scaling-64k``): CPU per answer for one answer of 1k, 4k, 16k and 64k characters
(20-character deltas, 400 a second), and for 10, 100 and 1,000 private chats asking at once
(2,000-character answers as in ``load50``), all in edit mode; rows ``scaling-1k`` ...
``scaling-1000chats``, also shown as a table of their own. The 1,000-chat point has 100 agent
slots (the fake's and ``YUANQI_MAX_CONCURRENCY``) and a 10x bot-wide Telegram budget.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.analysis import (
    MARKER,
    Turn,
    answer_copies,
    check_history,
    holds_answer,
    match_requests,
    percentiles,
    replay,
    stray_messages,
)
from bench.answers import deltas, head
from bench.procs import WEBHOOK_SECRET, BenchError, BotProcess, RedisCounters, bot_env
from bench.redis_proxy import ProxyGroup
from bench.report import draft_vs_edit, evaluate, render_table
from bench.scenarios import (
    BOT_DEFAULTS,
    MULTI,
    QUICK_ENV,
    QUICK_LIMITS,
    SCENARIOS,
    Scenario,
    row_name,
    variants,
)
from tests.fakes.redis_server import RedisServerError, redis_server
from tests.fakes.telegram import MESSAGE_OPS, FakeTelegram
from tests.fakes.yuanqi import Behaviour, FakeYuanqi, Recorded, Stream

WARMUP_CHAT = 999_999


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Monitor:
    """Notices when turns' answers are fully visible, looking only at chats with new calls."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self._telegram = telegram
        self._seen = 0
        self._dirty: set[int] = set()
        self._pending: dict[int, list[Turn]] = {}

    def watch(self, turn: Turn) -> None:
        self._pending.setdefault(turn.chat_id, []).append(turn)
        self._dirty.add(turn.chat_id)

    def check(self) -> None:
        calls = self._telegram.calls
        for call in calls[self._seen :]:
            chat = call.params.get("chat_id")
            if isinstance(chat, int):
                self._dirty.add(chat)
        self._seen = len(calls)
        now = time.monotonic()
        for chat in [c for c in self._dirty if c in self._pending]:
            shown = [(m.message_id, m.text) for m in self._telegram.bot_messages(chat)]
            waiting = self._pending[chat]
            for turn in list(waiting):
                if holds_answer(shown, turn):
                    turn.done_at = now
                    waiting.remove(turn)
            if not waiting:
                del self._pending[chat]
        self._dirty.clear()

    async def wait(self, turns: Sequence[Turn], timeout: float,  # noqa: ASYNC109
                   yuanqi: FakeYuanqi | None = None, stall: float = 20.0) -> bool:
        """True once every turn is done; False after ``timeout`` seconds, or (given ``yuanqi``)
        once neither fake has seen anything new for ``stall`` seconds: nothing more will come."""
        def done() -> bool:
            self.check()
            return all(t.done_at is not None for t in turns)

        def progress() -> tuple[int, int, int]:
            assert yuanqi is not None
            calls = sum(c.method != "getUpdates" for c in self._telegram.calls)
            return calls, len(yuanqi.requests), yuanqi.in_flight

        deadline = time.monotonic() + timeout
        seen, moved = (progress(), time.monotonic()) if yuanqi else (None, 0.0)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                await self._telegram.wait_for(done, min(remaining, 1.0))
            except AssertionError:
                pass
            else:
                return True
            if yuanqi is not None:
                if (now := progress()) != seen:
                    seen, moved = now, time.monotonic()
                elif time.monotonic() - moved > stall:
                    return False
        return False


class LoopLag:
    """How late the bench's own event loop (which runs both fakes) wakes up: a validity check."""

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(self.period)
            self.lags.append((time.monotonic() - start - self.period) * 1000)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def scripted(turns: Iterable[Turn]) -> Any:
    """The fake agent's default behaviour: each turn's own answer, found by its marker."""
    table = {t.index: t for t in turns}

    def behaviour(rec: Recorded) -> Behaviour:
        found = MARKER.search(rec.last_user_text)
        turn = table.get(int(found.group(1))) if found else None
        if turn is None:
            return Stream(["I have no script for that."])
        return Stream(turn.chunks, chunk_delay=turn.chunk_delay)
    return behaviour


def send(telegram: FakeTelegram, turn: Turn) -> None:
    photo = telegram.photo_sizes(photo_data(turn), sizes=1) if turn.photo_bytes else None
    turn.sent_at = time.monotonic()
    message = telegram.send_user_message(
        turn.chat_id, None if photo else turn.question, user_id=turn.user_id,
        first_name=turn.first_name, chat_type=turn.chat_type,
        caption=turn.question if photo else None, photo=photo,
    )
    turn.user_message_id = int(message["message_id"])


def photo_data(turn: Turn) -> bytes:
    """Distinct, incompressible-looking bytes for the turn's photo."""
    seed = turn.index.to_bytes(4, "big")
    return (seed + bytes(range(252))) * (turn.photo_bytes // 256) + bytes(turn.photo_bytes % 256)


async def drive(sc: Scenario, telegram: FakeTelegram, monitor: Monitor) -> None:
    """Send the scenario's questions (all at once, on a timetable, or one after another)."""
    if sc.sequential:
        for i, turn in enumerate(sc.turns):
            if i and sc.think_seconds > 0:  # a person reading the previous answer
                await asyncio.sleep(sc.think_seconds)
            monitor.watch(turn)
            send(telegram, turn)
            if not await monitor.wait([turn], sc.turn_timeout):
                log(f"{sc.name}: {turn.marker} not answered within {sc.turn_timeout:g}s")
        return
    start = time.monotonic()
    offsets = sc.offsets or [0.0] * len(sc.turns)
    for turn, offset in sorted(zip(sc.turns, offsets, strict=True), key=lambda p: p[1]):
        if (delay := start + offset - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        monitor.watch(turn)
        send(telegram, turn)


async def wait_idle(yuanqi: FakeYuanqi, timeout: float) -> None:  # noqa: ASYNC109
    """Until no agent request is open (or ``timeout``)."""
    with contextlib.suppress(AssertionError):
        await yuanqi.wait_for(lambda: yuanqi.in_flight == 0, timeout)


def settings_for(
    sc: Scenario, quick: bool, overrides: dict[str, str], stream_mode: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(what the bot process is given, the effective values the analysis assumes). A row's
    streaming mode wins over ``--bot-env``, so that the row is what its name says."""
    mode = {"STREAM_MODE": stream_mode} if stream_mode else {}
    given = {**(QUICK_ENV if quick else {}), **sc.env, **overrides, **mode}
    return given, {**BOT_DEFAULTS, **given}


def drafts_in_private(effective: dict[str, str]) -> bool:
    """Does the bot stream private chats' answers as native drafts ("auto" and "draft")?"""
    return effective["STREAM_MODE"].strip().lower() != "edit"


async def run_scenario(sc: Scenario, *, quick: bool, proxies: ProxyGroup, redis: Redis,
                       counters: RedisCounters, overrides: dict[str, str],
                       details: bool = False, replicas: int = 0,
                       stream_mode: str | None = None) -> dict[str, Any]:
    """One run of ``sc``: on one long-polling bot (``replicas=0``) or on that many webhook
    replicas, each talking to Redis through a counting proxy of its own; ``stream_mode``: the
    bot's ``STREAM_MODE`` (None: its default)."""
    given, effective = settings_for(sc, quick, overrides, stream_mode)
    interval_private = float(effective["EDIT_INTERVAL_PRIVATE"])
    interval_group = float(effective["EDIT_INTERVAL_GROUP"])
    drafts = drafts_in_private(effective)
    # what paces a private chat's first answer text: draft updates (drafts), or edits
    interval_first = float(effective["DRAFT_INTERVAL"]) if drafts else interval_private

    def interval_of(chat_id: int) -> float:
        return interval_group if chat_id < 0 else interval_first

    group_hold = int(effective["GROUP_HOLD_CHARS"])

    def hold_of(chat_id: int) -> int:
        return group_hold if chat_id < 0 else 0

    limits = QUICK_LIMITS if quick else sc.limits
    warm_text = f"{head('turn-0')} Warming up."
    # one warm-up turn per process: round-robin delivery hands one to each replica
    warms = [Turn(0, WARMUP_CHAT - i, "turn-0: warming up", warm_text, deltas(warm_text, 2), 0.0)
             for i in range(max(1, replicas))]
    settle = 0.1 if quick else 0.5
    row = row_name(sc.name, replicas, stream_mode, sc.point)
    label = row_name(sc.name, 0, None, sc.point)
    label = label if not replicas else f"{label} x{replicas}"
    if stream_mode:
        label = f"{label} ({stream_mode})"
    async with FakeTelegram(limits=limits) as telegram, \
            FakeYuanqi(max_concurrent=sc.agent_max_concurrent) as yuanqi:
        yuanqi.default = scripted([*warms[:1], *sc.turns])
        await redis.flushall()
        urls = await proxies.urls(max(1, replicas))
        with tempfile.TemporaryDirectory(prefix="bench-bot-") as workdir:
            bots = [BotProcess(bot_env(telegram, yuanqi, url, given), Path(workdir),
                               webhook=replicas > 0, name=f"bot{i}")
                    for i, url in enumerate(urls)]
            starts = await asyncio.gather(*(bot.start(telegram) for bot in bots),
                                          return_exceptions=True)
            if failed := [e for e in starts if isinstance(e, BaseException)]:
                await asyncio.gather(*(bot.stop() for bot in bots))
                raise failed[0]
            startup = max(float(t) for t in starts if not isinstance(t, BaseException))
            pids = ", ".join(str(bot.pid) for bot in bots)
            log(f"{label}: bot{'s' if replicas > 1 else ''} up in {startup:.1f}s (pid {pids}); "
                f"{sc.description}")
            if replicas:
                telegram.deliver_webhooks([bot.webhook_url for bot in bots], WEBHOOK_SECRET,
                                          duplicate_every=sc.duplicate_every)
            lag = LoopLag()
            monitor = Monitor(telegram)
            try:
                for warm in warms:
                    monitor.watch(warm)
                    send(telegram, warm)
                if not await monitor.wait(warms, 30):
                    raise BenchError("the warm-up turn was not answered:\n"
                                     + "\n".join(bot.log_tail() for bot in bots))
                await wait_idle(yuanqi, 10)
                await asyncio.sleep(settle)
                samples0 = await asyncio.gather(*(bot.metrics() for bot in bots))
                t0, redis0 = time.monotonic(), await counters.snapshot()
                cpu0 = [bot.cpu() for bot in bots]
                calls0, too_many0, violations0 = (
                    len(telegram.calls), telegram.too_many_requests, telegram.violations)
                requests0, deliveries0 = len(yuanqi.requests), len(telegram.webhook_deliveries)
                lag.start()
                await drive(sc, telegram, monitor)
                all_done = await monitor.wait(sc.turns, sc.timeout, yuanqi)
                if not all_done:
                    lost = sum(t.done_at is None for t in sc.turns)
                    log(f"{label}: {lost} turn(s) not answered (timeout {sc.timeout:g}s, "
                        "or 20s without any activity)")
                await wait_idle(yuanqi, 30)
                await asyncio.sleep(settle)
                await lag.stop()
                t1, redis1 = time.monotonic(), await counters.snapshot()
                cpu = [round(bot.cpu() - before, 3) for bot, before in zip(bots, cpu0, strict=True)]
                rss = [bot.peak_rss() for bot in bots]
                shown = {chat: [(m.message_id, m.text) for m in telegram.bot_messages(chat)]
                         for chat in {t.chat_id for t in sc.turns}}
                calls = telegram.calls[calls0:]
                too_many = telegram.too_many_requests - too_many0
                violations = telegram.violations - violations0
                deliveries = telegram.webhook_deliveries[deliveries0:]
                samples = await asyncio.gather(*(bot.metrics() for bot in bots))
            finally:
                await lag.stop()
                exit_codes = await asyncio.gather(*(bot.stop() for bot in bots))
            problems = [line for bot in bots for line in bot.problems()]
        requests = yuanqi.requests[requests0:]
        match_requests(sc.turns, requests)
        replay(calls, sc.turns, interval_of, hold_of)
        history = None
        if sc.name == "history":
            history = check_history(sc.turns, requests,
                                    max_messages=int(effective["HISTORY_MAX_MESSAGES"]),
                                    max_chars=int(effective["HISTORY_MAX_CHARS"]))
        peak_concurrency = yuanqi.peak_concurrency
        rejected = yuanqi.rejected_concurrency
    rd = counters.delta(redis0, redis1)
    commands, round_trips, setup = rd["commands"], rd["round_trips"], rd["setup_round_trips"]
    n = len(sc.turns)
    by_method = Counter(c.method for c in calls if c.method.lower() != "getupdates")
    message_ops = sum(v for k, v in by_method.items() if k.lower() in MESSAGE_OPS)
    # successful calls only, as the bot's own "edits=%d drafts=%d sends=%d" counts them
    done = Counter(c.method.lower() for c in calls if c.status == 200)
    figures = [t.figures() for t in sc.turns]

    def lat(name: str) -> dict[str, float | None]:
        return percentiles(f[name] for f in figures)

    completed = sum(t.completed for t in sc.turns)
    sent = [t.sent_at for t in sc.turns if t.sent_at is not None]
    finals = [t.final_visible_at for t in sc.turns if t.final_visible_at is not None]
    turns_seconds = round(max(finals) - min(sent), 2) if finals and sent else None
    copies = answer_copies(shown, sc.turns)
    cpu_total = sum(cpu)
    queued = [t.agent_at - t.sent_at for t in sc.turns
              if t.agent_at is not None and t.sent_at is not None]
    answering = [t.final_visible_at - t.agent_at for t in sc.turns
                 if t.final_visible_at is not None and t.agent_at is not None]
    result: dict[str, Any] = {
        "description": sc.description,
        "replicas": replicas,
        "mode": "webhook" if replicas else "polling",
        "stream_mode": effective["STREAM_MODE"],
        "turns": n,
        "completed": completed,
        "lost": n - completed,
        "lost_markers": [t.marker for t in sc.turns if not t.completed][:50],
        "duplicated_answers": sum(max(0, c - 1) for c in copies.values()),
        "duplicated_markers": [m for m, c in copies.items() if c > 1][:50],
        "stray_messages": stray_messages(shown, sc.turns),
        "throughput_turns_per_second": round(completed / turns_seconds, 2) if turns_seconds else None,
        "rate_limits": {"too_many_requests": too_many, "violations": violations,
                        "refused": refused_calls(calls, limits.global_per_second, t0)},
        "telegram": {
            "calls": sum(by_method.values()),
            "calls_per_turn": round(sum(by_method.values()) / n, 2),
            "message_ops_per_turn": round(message_ops / n, 2),
            "edits_per_turn": round(done["editmessagetext"] / n, 2),
            "drafts_per_turn": round(done["sendmessagedraft"] / n, 2),
            "sends_per_turn": round(done["sendmessage"] / n, 2),
            "by_method": dict(sorted(by_method.items())),
            "peak_message_ops_per_second": peak_rate(
                c.at for c in calls if c.status == 200 and c.method.lower() in MESSAGE_OPS),
        },
        "latency_ms": {
            "first": lat("first_ms"),
            "first_budget": lat("first_budget_ms"),
            "final": lat("final_ms"),
            "user_to_first": lat("user_to_first_ms"),
            "user_to_final": lat("user_to_final_ms"),
            "agent_wait": lat("agent_wait_ms"),
        },
        "cpu_seconds": round(cpu_total, 3),
        "cpu_seconds_per_turn": round(cpu_total / n, 4),
        "peak_rss_mb": round(max(rss), 1),
        "redis": {
            "commands": sum(commands.values()),
            "commands_per_turn": round(sum(commands.values()) / n, 2),
            "round_trips": round_trips,
            "round_trips_per_turn": round(round_trips / n, 2),
            "connections_opened": rd["connections"],
            "setup_round_trips": setup,
            "steady_round_trips_per_turn": round((round_trips - setup) / n, 2),
            "round_trips_per_turn_by_kind": {k: round(v / n, 2) for k, v in rd["kinds"].items()},
            "round_trip_latency_ms": percentiles(rd["latency_ms"]),
            "by_command": commands,
        },
        "turn_seconds": {  # means: question -> agent call (queued), agent call -> final text
            "queued_mean": round(sum(queued) / len(queued), 3) if queued else 0.0,
            "answering_mean": round(sum(answering) / len(answering), 3) if answering else 0.0,
        },
        "agent": {"requests": len(requests), "peak_concurrency": peak_concurrency,
                  "rejected_concurrency": rejected,
                  "repeated_calls": sum(max(0, t.requests - 1) for t in sc.turns)},
        "bot": {"startup_seconds": round(startup, 2),
                "exit_code": next((c for c in exit_codes if c != 0), exit_codes[0]),
                "log_problems": len(problems), "log_kinds": problem_kinds(problems),
                "log_samples": problems[:10]},
        "bench": {
            "measured_seconds": round(t1 - t0, 2),
            "turns_seconds": turns_seconds,
            "loop_lag_ms": percentiles(lag.lags),
        },
        "config": {**sc.info, "bot_settings": effective, "bot_env_given": given,
                   "telegram_limits": vars(limits), "intervals": {
                       "private": interval_private, "group": interval_group,
                       "first_text_private": interval_first}},
    }
    if replicas:
        result["per_replica"] = [
            {"cpu_seconds": c, "peak_rss_mb": round(r, 1), "redis_round_trips": rt,
             "exit_code": code, **_metric_deltas(m0, m)}
            for c, r, rt, code, m0, m in zip(cpu, rss, rd["per_proxy"][:replicas], exit_codes,
                                             samples0, samples, strict=True)]
        result["webhook"] = webhook_figures(deliveries)
    if history is not None:
        result["history"] = history
    if details:
        result["turn_details"] = [timeline(t, t0) for t in sc.turns]
    result["targets"] = evaluate(sc.name, row, result,
                                 interval_group if sc.name == "groups" else interval_private,
                                 quick=quick)
    return result


def _metric_deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, int | None]:
    """What a replica's /metrics says it did while measuring: turns (all outcomes), updates
    received by webhook, and updates dropped as already seen (None if it did not answer)."""
    def total(samples: dict[str, float], prefix: str) -> float:
        return sum(v for k, v in samples.items() if k == prefix or k.startswith(prefix + "{"))

    def delta(prefix: str) -> int | None:
        return round(total(after, prefix) - total(before, prefix)) if after else None
    return {"turns": delta("yuanqi_bot_turns_total"),
            "updates_received": delta("yuanqi_bot_updates_received_total"),
            "updates_duplicate": delta("yuanqi_bot_updates_duplicate_total")}


def webhook_figures(deliveries: Sequence[Any]) -> dict[str, Any]:
    """What the fake Telegram's webhook POSTs came to: confirmed, re-delivered, refused."""
    ok = Counter(d.update_id for d in deliveries if d.outcome == 200)
    failed = Counter(str(d.outcome) for d in deliveries
                     if not (isinstance(d.outcome, int) and 200 <= d.outcome < 300))
    return {"posts": len(deliveries), "updates": len(ok),
            "redelivered": sum(v - 1 for v in ok.values()),
            "failed_posts": sum(failed.values()), "failures": dict(failed),
            "per_url": dict(Counter(d.url for d in deliveries))}


def refused_calls(calls: Sequence[Any], global_per_second: float, t0: float,
                  limit: int = 20) -> list[dict[str, Any]]:
    """The first Telegram 429s: which call, when (s since measuring started), and which budget
    it ran into: bot-wide if the bot's successful message ops in the second before it reached
    the global cap, else the chat's (or group's)."""
    done = sorted(c.at for c in calls if c.status == 200 and c.method.lower() in MESSAGE_OPS)
    out = []
    for call in calls:
        if call.status != 429:
            continue
        recent = bisect.bisect_right(done, call.at) - bisect.bisect_right(done, call.at - 1.0)
        out.append({"method": call.method, "chat_id": call.params.get("chat_id"),
                    "at": round(call.at - t0, 3), "ops_in_last_second": recent,
                    "budget": "bot-wide" if recent >= global_per_second else "chat"})
        if len(out) >= limit:
            break
    return out


def peak_rate(times: Iterable[float], window: float = 1.0) -> int:
    """The most events in any ``window`` seconds."""
    ordered, best, lo = sorted(times), 0, 0
    for hi, at in enumerate(ordered):
        while ordered[lo] <= at - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def timeline(turn: Turn, t0: float) -> dict[str, Any]:
    """One turn's moments, in seconds since measuring started."""
    def rel(at: float | None) -> float | None:
        return None if at is None else round(at - t0, 4)
    return {"marker": turn.marker, "chat_id": turn.chat_id, "agent_requests": turn.requests,
            "sent": rel(turn.sent_at), "agent_request": rel(turn.agent_at),
            "first_delta": rel(turn.first_delta_at), "last_byte": rel(turn.last_byte_at),
            "first_visible": rel(turn.first_visible_at), "first_allowed": rel(turn.first_allowed_at),
            "final_visible": rel(turn.final_visible_at)}


def problem_kinds(lines: Sequence[str]) -> dict[str, int]:
    """The bot's warnings and errors, counted by level, logger and message (digits blanked)."""
    kinds: Counter[str] = Counter()
    for line in lines:
        _, _, level, rest = line.split(" ", 3)
        kinds[f"{level} {re.sub(r'[0-9]+', '#', rest)[:120]}"] += 1
    return dict(kinds.most_common(20))


async def run_all(names: Sequence[str], *, quick: bool, redis_url: str,
                  overrides: dict[str, str], details: bool = False) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    proxies = ProxyGroup(redis_url)
    counters = RedisCounters(redis, proxies)
    try:
        await counters.calibrate()
        results: dict[str, Any] = {}
        for name in names:
            scenario, _, only = name.partition("-")
            runs: list[tuple[Scenario, int, str | None]]
            if scenario in MULTI:
                runs = [(sc, 0, None) for sc in MULTI[scenario](quick)
                        if not only or only == sc.point]
            else:
                runs = [(SCENARIOS[scenario](quick), replicas, mode)  # fresh turns every run
                        for replicas, mode in variants(scenario) if not only or only == mode]
            if not runs:
                log(f"{name}: not among the {'quick' if quick else 'full-size'} runs; skipped")
            for sc, replicas, mode in runs:
                started = time.monotonic()
                key = row_name(scenario, replicas, mode, sc.point)
                results[key] = await run_scenario(sc, quick=quick, proxies=proxies, redis=redis,
                                                  counters=counters, overrides=overrides,
                                                  details=details, replicas=replicas,
                                                  stream_mode=mode)
                r = results[key]
                log(f"{key}: {r['completed']}/{r['turns']} turns, "
                    f"{r['rate_limits']['too_many_requests']} 429s, {r['duplicated_answers']} "
                    f"duplicated, done in {time.monotonic() - started:.1f}s")
        return results
    finally:
        await proxies.stop()
        await redis.aclose()


def scenario_choices() -> list[str]:
    """What --scenario takes: a scenario (every row of it), one streaming mode of it, or one
    point of a multi-run scenario (``scaling-64k``)."""
    return [*SCENARIOS, *(row_name(name, 0, mode) for name in SCENARIOS
                          for replicas, mode in variants(name) if mode and not replicas),
            *MULTI, *(row_name(name, point=sc.point) for name, runs in MULTI.items()
                      for sc in runs(False))]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = scenario_choices()
    parser.add_argument("--scenario", action="append", choices=choices, metavar="NAME",
                        help="run only this scenario (repeatable): " + ", ".join(choices))
    parser.add_argument("--quick", action="store_true",
                        help="tiny versions with fast pacing (a few seconds; proves the script works)")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="write all figures as JSON to PATH ('-' or no PATH: stdout, table to stderr)")
    parser.add_argument("--bot-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra setting for the bot process, e.g. EDIT_INTERVAL_PRIVATE=0.5")
    parser.add_argument("--details", action="store_true",
                        help="put every turn's timeline (sent, agent, visible) into the JSON")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if any target is missed (the list ends the table)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    names = list(dict.fromkeys(args.scenario or SCENARIOS))
    names = [n for n in names if n.partition("-")[0] == n or n.partition("-")[0] not in names]
    overrides = dict(item.split("=", 1) for item in args.bot_env if "=" in item)
    started = time.monotonic()
    try:
        with redis_server() as redis_url:
            results = asyncio.run(run_all(names, quick=args.quick, redis_url=redis_url,
                                          overrides=overrides, details=args.details))
    except (BenchError, RedisServerError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    ratios = draft_vs_edit(results, judge=not args.quick)  # adds the draft rows' CPU target
    targets_met = all(t["ok"] for r in results.values() for t in r["targets"].values())
    report = {
        "mode": "quick" if args.quick else "full",
        "scenarios": results,
        "draft_vs_edit_cpu": ratios,  # CPU per answer, draft row / edit row, per scenario
        "targets_met": targets_met,
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
    table = render_table(results, ratios, cpu_judged=not args.quick)
    to_stdout = args.json == "-"
    print(table, file=sys.stderr if to_stdout else sys.stdout, flush=True)
    if args.json:
        text = json.dumps(report, indent=2, default=str)
        if to_stdout:
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.check and not targets_met:
        raise SystemExit(1)
