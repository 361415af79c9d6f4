"""The scenarios: who asks what, when, and how the fake agent answers (full and ``--quick`` sizes)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.analysis import Turn
from bench.answers import answer_text, deltas
from tests.fakes.telegram import RateLimits

BOT_USERNAME = "yuanqi_test_bot"  # FakeTelegram's default bot
#: The limits the issue names: ~1 op/s per chat, 20/min per group, 30/s per bot.
TELEGRAM_LIMITS = RateLimits(per_chat_per_second=1.0, per_chat_burst=3, per_group_per_minute=20,
                             global_per_second=30)
#: --quick: faster pacing so the smoke run takes seconds; limits loose enough to match it.
QUICK_LIMITS = RateLimits(per_chat_per_second=20.0, per_chat_burst=3, per_group_per_minute=1200,
                          global_per_second=1000)
QUICK_ENV = {"EDIT_INTERVAL_PRIVATE": "0.1", "EDIT_INTERVAL_GROUP": "0.15", "DRAFT_INTERVAL": "0.1"}
#: The bot's documented defaults (README configuration table); --bot-env may override them.
BOT_DEFAULTS = {"EDIT_INTERVAL_PRIVATE": "1.0", "EDIT_INTERVAL_GROUP": "3.0",
                "STREAM_MODE": "auto", "DRAFT_INTERVAL": "0.5", "DRAFT_KEEPALIVE": "20",
                "HISTORY_MAX_MESSAGES": "40", "HISTORY_MAX_CHARS": "24000",
                "YUANQI_MAX_CONCURRENCY": "10", "GROUP_HOLD_CHARS": "300"}
#: STREAM_MODE per row for scenarios run in both ways (``single-edit``, ``single-draft``, ...):
#: "edit" edits a message in place; "draft" streams a native draft (private chats) and then
#: sends the final text as real messages.
BOTH_MODES = ("edit", "draft")


@dataclass
class Scenario:
    name: str
    description: str
    turns: list[Turn]
    timeout: float  # seconds, for the whole scenario after its last question was sent
    offsets: list[float] | None = None  # seconds after the start at which each turn is sent
    sequential: bool = False  # send each question once the previous answer is fully visible
    turn_timeout: float = 60.0  # sequential: give up waiting for one answer after this long
    #: sequential: seconds between an answer showing and the next question (a person reading it)
    think_seconds: float = 0.0
    agent_max_concurrent: int | None = None
    limits: RateLimits = field(default_factory=lambda: TELEGRAM_LIMITS)
    env: dict[str, str] = field(default_factory=dict)  # extra bot settings
    info: dict[str, object] = field(default_factory=dict)  # what the JSON says about the setup
    #: webhook replicas to run the load on, one run each (empty: one long-polling process)
    replica_counts: tuple[int, ...] = ()
    duplicate_every: int = 0  # webhook: updates whose update_id is a multiple are POSTed twice
    #: STREAM_MODE values to run it with, one run (row ``name-mode``) each; empty: the default
    stream_modes: tuple[str, ...] = ()
    #: one point of a multi-run scenario (``scaling``): the row is ``name-point``
    point: str = ""


def _turn(index: int, chat_id: int, length: int, count: int, duration: float, *,
          question: str | None = None, paragraph: int = 600, **kwargs: Any) -> Turn:
    marker = f"turn-{index}"
    text = answer_text(marker, length, seed=index, paragraph=paragraph)
    pieces = deltas(text, count)
    delay = duration / (len(pieces) - 1) if len(pieces) > 1 else 0.0
    return Turn(index, chat_id, question or f"{marker}: please tell me something.", text, pieces,
                delay, **kwargs)


def single(quick: bool) -> Scenario:
    length, count, duration = (300, 30, 0.3) if quick else (2000, 400, 5.0)
    return Scenario(
        "single", f"1 private chat, {length}-char answer in {count} deltas over {duration:g}s",
        [_turn(1, 1001, length, count, duration)], timeout=60, stream_modes=BOTH_MODES,
        info={"answer_chars": length, "deltas": count, "stream_seconds": duration},
    )


def burst(quick: bool) -> Scenario:
    # 1 s answers: 10 agent slots finish ~9.5 answers/s, each needing ~2 message ops (first words,
    # then the final text one chat interval later): ~19 ops/s, within Telegram's 30/s. With 0.5 s
    # answers the demand (~37 ops/s) would exceed it, and no bot could meet the latency targets.
    chats, length, count, duration = (10, 100, 5, 0.1) if quick else (500, 300, 30, 1.0)
    turns = [_turn(i + 1, 20_001 + i, length, count, duration) for i in range(chats)]
    return Scenario(
        "burst", f"{chats} private chats at once, agent capped at 10 concurrent; "
        f"{length}-char answers over {duration:g}s", turns, timeout=300, agent_max_concurrent=10,
        info={"chats": chats, "answer_chars": length, "deltas": count, "stream_seconds": duration,
              "agent_max_concurrent": 10},
    )


def replicas(quick: bool) -> Scenario:
    # The burst load again, through webhooks: the fake Telegram POSTs round-robin to every
    # replica and re-delivers every 10th update to the next one. Agent slots (10) and Telegram's
    # 30 ops/s are the whole bot's, so more replicas share the work, not the limits.
    counts = (1, 2) if quick else (1, 2, 3)
    sc = burst(quick)
    chats = len(sc.turns)
    sc.name = "replicas"
    sc.description = (f"the burst load ({chats} chats) by webhook on {', '.join(map(str, counts))} "
                      "replicas; every 10th update delivered twice")
    sc.replica_counts, sc.duplicate_every = counts, 10
    sc.info = {**sc.info, "replica_counts": list(counts), "duplicate_every": 10}
    return sc


def groups(quick: bool) -> Scenario:
    n_groups, members, spread, length, count, duration = (
        (2, 2, 0.5, 100, 5, 0.2) if quick else (20, 5, 60.0, 600, 60, 3.0))
    rng = random.Random(20240601)
    plan = sorted((rng.uniform(0, spread), g, m) for g in range(n_groups) for m in range(members))
    turns, offsets = [], []
    for i, (at, g, m) in enumerate(plan, start=1):
        question = f"turn-{i} @{BOT_USERNAME} what do you make of this?"
        turns.append(_turn(
            i, -1_001_000_000_001 - g, length, count, duration, question=question,
            chat_type="supergroup", user_id=7_000_000 + 10 * g + m, first_name=f"Member{m}",
        ))
        offsets.append(at)
    return Scenario(
        "groups", f"{n_groups} groups x {members} members, mentions over {spread:g}s; "
        f"{length}-char answers over {duration:g}s", turns, offsets=offsets, timeout=180,
        info={"groups": n_groups, "members": members, "spread_seconds": spread,
              "answer_chars": length, "deltas": count, "stream_seconds": duration},
    )


def long(quick: bool) -> Scenario:
    length, count, duration = (5000, 100, 0.5) if quick else (20_000, 4000, 20.0)
    return Scenario(
        "long", f"1 private chat, {length}-char answer in {count} deltas over {duration:g}s",
        [_turn(1, 1002, length, count, duration, paragraph=500)], timeout=180,
        stream_modes=BOTH_MODES, info={"answer_chars": length, "deltas": count, "stream_seconds": duration},
    )


def _chats(chats: int, length: int, count: int, duration: float, *, agent: int,
           first_chat: int) -> tuple[list[Turn], dict[str, object]]:
    turns = [_turn(i + 1, first_chat + i, length, count, duration) for i in range(chats)]
    return turns, {"chats": chats, "answer_chars": length, "deltas": count,
                   "stream_seconds": duration, "agent_max_concurrent": agent}


def load50(quick: bool) -> Scenario:
    # 50 chats at once, 10 agent calls at a time: five waves of ten 5 s answers, each answer
    # 2,000 characters in 20-character deltas. About 10 answers stream at a time (~1 edit/s each),
    # well within Telegram's 30 ops/s, so the chat's own pacing is all a final text waits for.
    chats, length, count, duration = (5, 200, 10, 0.2) if quick else (50, 2000, 100, 5.0)
    turns, info = _chats(chats, length, count, duration, agent=10, first_chat=40_001)
    return Scenario(
        "load50", f"{chats} private chats ask at once, agent capped at 10 concurrent; "
        f"{length}-char answers in {count} deltas over {duration:g}s", turns, timeout=300,
        agent_max_concurrent=10, stream_modes=BOTH_MODES, info=info,
    )


#: ``scaling``: chunks of 20 characters at 400 a second (8,000 characters a second)
SCALING_CHUNK, SCALING_RATE = 20, 400.0
#: the many-chats point: agent slots (fake and bot) and the bot-wide Telegram budget raised 10x
MANY_AGENT = 100
MANY_LIMITS = RateLimits(per_chat_per_second=1.0, per_chat_burst=3, per_group_per_minute=20,
                         global_per_second=300)
MANY_ENV = {"YUANQI_MAX_CONCURRENCY": str(MANY_AGENT), "TELEGRAM_MAX_OPS_PER_SECOND": "280"}


def scaling(quick: bool) -> list[Scenario]:
    """How CPU per answer grows: one answer of 1k to 64k characters (streamed at a fixed rate),
    and 2,000-character answers in 10 to 1,000 chats at once; all in edit mode. Rows
    ``scaling-1k`` ... and ``scaling-10chats`` ...; the largest chat count gets 100 agent slots
    (fake agent and ``YUANQI_MAX_CONCURRENCY``) and a 10x bot-wide Telegram budget (300 ops/s,
    the bot pacing at 280) so that it finishes in about a minute."""
    sizes = (1_000, 4_000) if quick else (1_000, 4_000, 16_000, 64_000)
    counts = (2, 4) if quick else (10, 100, 1_000)
    edit = {"STREAM_MODE": "edit"}
    runs = []
    for length in sizes:
        count = length // SCALING_CHUNK
        duration = (count - 1) / SCALING_RATE
        point = f"{length // 1000}k"
        runs.append(Scenario(
            "scaling", f"1 private chat, {length}-char answer in {count} deltas over "
            f"{duration:.1f}s (edit mode)", [_turn(1, 50_001, length, count, duration)],
            timeout=300, env=edit, point=point,
            info={"answer_chars": length, "deltas": count, "stream_seconds": duration},
        ))
    length, count, duration = (200, 10, 0.2) if quick else (2000, 100, 5.0)
    for chats in counts:
        many = chats == counts[-1]
        agent = MANY_AGENT if many else 10
        turns, info = _chats(chats, length, count, duration, agent=agent,
                             first_chat=60_001)
        runs.append(Scenario(
            "scaling", f"{chats} private chats ask at once, agent capped at {agent} concurrent; "
            f"{length}-char answers in {count} deltas over {duration:g}s (edit mode)", turns,
            timeout=600, agent_max_concurrent=agent, point=f"{chats}chats",
            env={**edit, **(MANY_ENV if many else {})},
            limits=MANY_LIMITS if many else TELEGRAM_LIMITS, info=info,
        ))
    return runs


def history(quick: bool) -> Scenario:
    # The reading pause: with none, each question would come the moment the previous answer
    # shows, so the chat's Telegram budget (~1 message/s) and not the bot would set the pace,
    # and every final text would wait ~1 s for it, whatever the bot does.
    turns_n, low, high, think = (6, 100, 300, 0.05) if quick else (200, 400, 2000, 1.0)
    rng = random.Random(7)
    turns = [_turn(i, 1003, rng.randint(low, high), 4, 0.0,
                   question=f"turn-{i}: and what comes next? " + "Tell me more. " * (i % 5))
             for i in range(1, turns_n + 1)]
    for turn in turns:
        turn.question = turn.question.strip()
    env = {"HISTORY_MAX_MESSAGES": "5"} if quick else {}
    return Scenario(
        "history", f"{turns_n} turns in 1 private chat, each sent after a {think:g}s reading pause "
        f"once the previous answer shows; {low}-{high}-char answers in 4 deltas at once", turns,
        timeout=60, sequential=True, turn_timeout=30, think_seconds=think, env=env,
        info={"turns": turns_n, "answer_chars": [low, high], "deltas": 4, "think_seconds": think},
    )


def media(quick: bool) -> Scenario:
    # Inline transport (the default): every photo is downloaded, base64-encoded and sent in the
    # JSON body, while only 10 agent calls run at a time. The figure to watch is peak RSS.
    chats, size, length, count, duration = (5, 1, 100, 5, 0.1) if quick else (50, 5, 300, 30, 1.0)
    turns = [_turn(i + 1, 30_001 + i, length, count, duration, photo_bytes=size * 1024 * 1024)
             for i in range(chats)]
    return Scenario(
        "media", f"{chats} private chats each send a {size} MB photo at once (inline transport); "
        f"{length}-char answers over {duration:g}s", turns, timeout=300, agent_max_concurrent=10,
        info={"chats": chats, "photo_mb": size, "answer_chars": length, "deltas": count,
              "stream_seconds": duration, "agent_max_concurrent": 10},
    )


SCENARIOS: dict[str, Callable[[bool], Scenario]] = {
    "single": single, "burst": burst, "groups": groups, "long": long, "load50": load50,
    "history": history, "replicas": replicas, "media": media,
}
#: Run only when named (``--scenario scaling``): one scenario per point, each its own row.
MULTI: dict[str, Callable[[bool], list[Scenario]]] = {"scaling": scaling}


def variants(name: str) -> list[tuple[int, str | None]]:
    """The runs (rows) of one scenario: (replica count, 0 for polling; STREAM_MODE or None)."""
    sc = SCENARIOS[name](True)
    return [(replicas, mode) for replicas in sc.replica_counts or (0,)
            for mode in sc.stream_modes or (None,)]


def row_name(scenario: str, replicas: int = 0, mode: str | None = None, point: str = "") -> str:
    """The results' key: the scenario, ``replicas-2`` for one replica count of it,
    ``single-draft`` for one streaming mode of it, or ``scaling-64k`` for one point of it."""
    parts = [scenario, *([point] if point else []), *([str(replicas)] if replicas else []),
             *([mode] if mode else [])]
    return "-".join(parts)
