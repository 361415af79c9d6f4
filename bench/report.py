"""Targets (from the issue) and the text table."""

from __future__ import annotations

from typing import Any

FIRST_TEXT_MS = 250  # p99, from the first delta, whenever the chat's rate budget allows it
FINAL_SLACK_MS = 100  # final text at most one edit interval + this after the last byte (p99)
MAX_ROUND_TRIPS = 3  # Redis round trips per turn
MAX_LONG_RATIO = 12  # CPU per turn, long against single


def evaluate(name: str, r: dict[str, Any], interval: float) -> dict[str, dict[str, Any]]:
    lat = r["latency_ms"]
    final_limit = round(interval * 1000 + FINAL_SLACK_MS)
    checks = {
        "lost": (r["lost"], 0),
        "rate_limit_hits": (r["rate_limits"]["too_many_requests"] + r["rate_limits"]["violations"], 0),
        "final_p99_ms": (lat["final"]["p99"], final_limit),
        "first_budget_p99_ms": (lat["first_budget"]["p99"], FIRST_TEXT_MS),
        "redis_round_trips_per_turn": (r["redis"]["steady_round_trips_per_turn"], MAX_ROUND_TRIPS),
    }
    return {key: {"value": value, "limit": limit, "ok": value is not None and value <= limit}
            for key, (value, limit) in checks.items()}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _triple(p: dict[str, Any]) -> str:
    return "/".join(_ms(p[k]) for k in ("p50", "p99", "max"))


def _round_trips(redis: dict[str, Any]) -> str:
    setup = redis["round_trips_per_turn"] - redis["steady_round_trips_per_turn"]
    steady = f"{redis['steady_round_trips_per_turn']:.2f}"
    return f"{steady} (+{setup:.2f})" if setup > 0.005 else steady


COLUMNS = ("scenario", "turns", "lost", "stray", "429s", "viol", "tg/turn", "first ms p50/p99/max",
           "first* p99", "final ms p50/p99/max", "cpu s/turn", "rss MB", "redis cmd/turn",
           "redis rt/turn", "secs")


def render_table(results: dict[str, Any], ratio: float | None) -> str:
    rows = [COLUMNS]
    for name, r in results.items():
        lat = r["latency_ms"]
        rows.append((
            name, str(r["turns"]), str(r["lost"]), str(r["stray_messages"]),
            str(r["rate_limits"]["too_many_requests"]),
            str(r["rate_limits"]["violations"]), f"{r['telegram']['calls_per_turn']:.2f}",
            _triple(lat["first"]), _ms(lat["first_budget"]["p99"]), _triple(lat["final"]),
            f"{r['cpu_seconds_per_turn']:.4f}", f"{r['peak_rss_mb']:.1f}",
            f"{r['redis']['commands_per_turn']:.2f}", _round_trips(r["redis"]),
            f"{r['bench']['measured_seconds']:.1f}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    if ratio is not None:
        verdict = "ok" if ratio <= MAX_LONG_RATIO else "MISSED"
        lines.append(f"CPU per turn, long / single: {ratio:.2f}x (target <= {MAX_LONG_RATIO}x: {verdict})")
    else:
        lines.append("CPU per turn, long / single: - (needs both scenarios)")
    lines.append("")
    lines.append("targets (value / limit):")
    for name, r in results.items():
        cells = []
        for key, t in r["targets"].items():
            value = "-" if t["value"] is None else f"{t['value']:g}"
            cells.append(f"{key} {value}/{t['limit']:g} {'ok' if t['ok'] else 'MISSED'}")
        lines.append(f"  {name:<8} " + "; ".join(cells))
    lines.append("")
    lines.append(
        "first = agent's first delta -> first answer text visible; first* = the same, counted from\n"
        "when the chat's pacing interval next allowed an operation (max(first delta, previous\n"
        "message op in the chat + interval)); final = agent's last byte -> whole answer visible.\n"
        "stray = bot messages left in the chats that are no part of an answer (notices, leftovers).\n"
        "429s = Telegram 429 answers; viol = message ops sent while a retry_after was in force.\n"
        "redis rt = round trips per turn, counted by a pass-through proxy; (+ connection set-up:\n"
        "HELLO, CLIENT SETINFO of each new pooled connection); cpu and rss: the bot process's.\n"
        "burst: 'first' starts at the agent's first delta, so waiting for one of the 10 agent\n"
        "slots is not in it (see latency_ms.user_to_first and agent_wait in the JSON)."
    )
    return "\n".join(lines)
