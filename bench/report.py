"""Targets (from the issue) and the text table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FIRST_TEXT_MS = 250  # p99, from the first delta, whenever the chat's rate budget allows it
FINAL_SLACK_MS = 100  # final text at most one edit interval + this after the last byte (p99)
#: The Redis round trips a turn may cost (connection set-up apart): a fixed part, a part per
#: Telegram call, and what waiting adds: agent-slot polls (every 0.2 s) and lease renewals while
#: queued for an agent slot, lease and slot renewals and the sweepers while the answer streams.
RT_PER_TURN = 15.0
RT_PER_TELEGRAM_CALL = 5.0
RT_PER_QUEUED_SECOND = 5.5
RT_PER_ANSWERING_SECOND = 1.0
MAX_LONG_RATIO = 12  # CPU per turn, long against single (in the same streaming mode)
KINDS_SHOWN = 7  # round-trip kinds listed per scenario in the text report


def evaluate(name: str, r: dict[str, Any], interval: float) -> dict[str, dict[str, Any]]:
    lat = r["latency_ms"]
    final_limit = round(interval * 1000 + FINAL_SLACK_MS)
    checks: dict[str, tuple[Any, float]] = {
        "lost": (r["lost"], 0),
        "duplicated": (r["duplicated_answers"], 0),
        "agent_429s": (r["agent"]["rejected_concurrency"], 0),
        "rate_limit_hits": (r["rate_limits"]["too_many_requests"] + r["rate_limits"]["violations"], 0),
    }
    if name != "replicas":  # replicas: latency is compared side by side, not judged
        checks["final_p99_ms"] = (lat["final"]["p99"], final_limit)
        checks["first_budget_p99_ms"] = (lat["first_budget"]["p99"], FIRST_TEXT_MS)
    checks["redis_round_trips_per_turn"] = (r["redis"]["steady_round_trips_per_turn"],
                                            round_trip_budget(r))
    return {key: {"value": value, "limit": limit, "ok": value is not None and value <= limit}
            for key, (value, limit) in checks.items()}


def round_trip_budget(r: dict[str, Any]) -> float:
    """The round trips per turn the scenario may use, from its own Telegram calls and waits."""
    seconds = r["turn_seconds"]
    budget: float = (RT_PER_TURN + RT_PER_TELEGRAM_CALL * r["telegram"]["calls_per_turn"]
                     + RT_PER_QUEUED_SECOND * seconds["queued_mean"]
                     + RT_PER_ANSWERING_SECOND * seconds["answering_mean"])
    return round(budget, 1)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _triple(p: dict[str, Any]) -> str:
    return "/".join(_ms(p[k]) for k in ("p50", "p99", "max"))


def _round_trips(redis: dict[str, Any]) -> str:
    setup = redis["round_trips_per_turn"] - redis["steady_round_trips_per_turn"]
    steady = f"{redis['steady_round_trips_per_turn']:.2f}"
    return f"{steady} (+{setup:.2f})" if setup > 0.005 else steady


COLUMNS = ("scenario", "turns", "lost", "dup", "stray", "429s", "viol", "tg/turn",
           "edit/draft/send per turn", "first ms p50/p99/max",
           "first* p99", "final ms p50/p99/max", "cpu s/turn", "rss MB", "redis cmd/turn",
           "redis rt/turn", "secs")


def _grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


REPLICA_COLUMNS = ("replicas", "turns", "lost", "dup", "agent 429s", "tg 429s", "viol", "redeliv",
                   "turns/s", "first ms p50/p99", "final ms p50/p99", "user->final s p50/p99",
                   "cpu s/turn", "redis rt/turn", "turns per replica")


def _pair(p: dict[str, Any], scale: float = 1.0, digits: int = 0) -> str:
    return "/".join("-" if p[k] is None else f"{p[k] / scale:.{digits}f}" for k in ("p50", "p99"))


def _replicas_table(results: dict[str, Any]) -> list[str]:
    """The replicas runs side by side (cpu summed over the replicas)."""
    rows = [REPLICA_COLUMNS]
    for r in results.values():
        lat = r["latency_ms"]
        per = "/".join("-" if p["turns"] is None else str(p["turns"]) for p in r["per_replica"])
        rows.append((
            str(r["replicas"]), str(r["turns"]), str(r["lost"]), str(r["duplicated_answers"]),
            str(r["agent"]["rejected_concurrency"]), str(r["rate_limits"]["too_many_requests"]),
            str(r["rate_limits"]["violations"]), str(r["webhook"]["redelivered"]),
            "-" if r["throughput_turns_per_second"] is None else f"{r['throughput_turns_per_second']:.2f}",
            _pair(lat["first"]), _pair(lat["final"]), _pair(lat["user_to_final"], 1000, 1),
            f"{r['cpu_seconds_per_turn']:.4f}", _round_trips(r["redis"]), per,
        ))
    return _grid(rows)


def _ops(telegram: dict[str, Any]) -> str:
    """Successful edits, draft updates and sends per turn."""
    return "/".join(f"{telegram[f'{kind}_per_turn']:g}" for kind in ("edits", "drafts", "sends"))


def render_table(results: dict[str, Any], ratios: dict[str, float]) -> str:
    rows = [COLUMNS]
    for name, r in results.items():
        lat = r["latency_ms"]
        rows.append((
            name, str(r["turns"]), str(r["lost"]), str(r["duplicated_answers"]), str(r["stray_messages"]),
            str(r["rate_limits"]["too_many_requests"]),
            str(r["rate_limits"]["violations"]), f"{r['telegram']['calls_per_turn']:.2f}",
            _ops(r["telegram"]), _triple(lat["first"]), _ms(lat["first_budget"]["p99"]),
            _triple(lat["final"]),
            f"{r['cpu_seconds_per_turn']:.4f}", f"{r['peak_rss_mb']:.1f}",
            f"{r['redis']['commands_per_turn']:.2f}", _round_trips(r["redis"]),
            f"{r['bench']['measured_seconds']:.1f}",
        ))
    lines = _grid(rows)
    lines.append("")
    replica_rows = {name: r for name, r in results.items() if r.get("replicas")}
    if replica_rows:
        lines.extend(_replicas_table(replica_rows))
        lines.append("")
    for mode, ratio in ratios.items():
        verdict = "ok" if ratio <= MAX_LONG_RATIO else "MISSED"
        lines.append(f"CPU per turn, long / single ({mode}): {ratio:.2f}x "
                     f"(target <= {MAX_LONG_RATIO}x: {verdict})")
    if not ratios:
        lines.append("CPU per turn, long / single: - (needs both scenarios, in the same mode)")
    lines.append("")
    lines.append("targets (value / limit):")
    width = max(10, *(len(name) for name in results))
    for name, r in results.items():
        cells = []
        for key, t in r["targets"].items():
            value = "-" if t["value"] is None else f"{t['value']:g}"
            cells.append(f"{key} {value}/{t['limit']:g} {'ok' if t['ok'] else 'MISSED'}")
        lines.append(f"  {name:<{width}} " + "; ".join(cells))
    lines.append("")
    lines.append("redis round trips per turn, by what they carried (largest first):")
    for name, r in results.items():
        kinds = r["redis"].get("round_trips_per_turn_by_kind", {})
        shown = [f"{kind} {v:g}" for kind, v in list(kinds.items())[:KINDS_SHOWN] if v >= 0.01]
        rest = sum(list(kinds.values())[KINDS_SHOWN:])
        if rest >= 0.01:
            shown.append(f"other {rest:.2f}")
        lines.append(f"  {name:<{width}} " + ("; ".join(shown) or "-"))
    lines.append("")
    lines.append(
        "first = agent's first delta -> first answer text visible (a sent or edited message, or a\n"
        "draft update); first* = the same, counted from when the chat's pacing interval next\n"
        "allowed an operation (max(first delta, previous message op in the chat + interval; in\n"
        "private chats streamed as drafts, DRAFT_INTERVAL)); final = agent's last byte -> whole\n"
        "answer visible in real messages (a draft's final text is sent as messages).\n"
        "edit/draft/send per turn = successful editMessageText, sendMessageDraft and sendMessage\n"
        "calls; rows -edit and -draft ran with STREAM_MODE=edit and STREAM_MODE=draft, the other\n"
        "scenarios with the bot's default (auto: drafts in private chats, edits in groups).\n"
        "stray = bot messages left in the chats that are no part of an answer (notices, leftovers).\n"
        "429s = Telegram 429 answers; viol = message ops sent while a retry_after was in force.\n"
        "redis rt = round trips per turn, counted by a pass-through proxy; (+ set-up: HELLO,\n"
        "CLIENT SETINFO of each new pooled connection, SCRIPT LOAD); cpu and rss: the bot process's.\n"
        f"redis rt target: {RT_PER_TURN:g} per turn + {RT_PER_TELEGRAM_CALL:g} per Telegram call + "
        f"{RT_PER_QUEUED_SECOND:g} per second queued for an\n"
        f"agent slot + {RT_PER_ANSWERING_SECOND:g} per second from the agent call to the final text "
        "(means over the scenario's turns).\n"
        "dup = turns answered more than once (extra bot messages starting the same answer).\n"
        "replicas: webhook replicas; cpu is summed over them, rss is the largest; turns/s = turns\n"
        "over first question -> last answer shown; agent 429s = the fake agent's refusals of an\n"
        "11th concurrent call; redeliv = updates the fake Telegram POSTed a second time.\n"
        "burst: 'first' starts at the agent's first delta, so waiting for one of the 10 agent\n"
        "slots is not in it (see latency_ms.user_to_first and agent_wait in the JSON)."
    )
    return "\n".join(lines)
