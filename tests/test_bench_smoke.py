"""The bench runs: ``python -m bench --quick`` (every scenario, ``scaling`` included) exits 0
with complete JSON, no lost turns, and (``replicas``: 10 chats by webhook on 1 and 2 replica
processes) no answer given twice; ``single``, ``long`` and ``load50`` run once per streaming
mode (edits, native drafts); ``scaling`` adds its table; the targets are listed and judged.

No timing is asserted here: the bench measures, it does not judge (see README, Benchmark).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench.report import draft_vs_edit, evaluate, render_table
from bench.scenarios import SCENARIOS as BENCH_SCENARIOS
from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, FakeYuanqi, Stream

ROOT = Path(__file__).resolve().parents[1]
BOTH_MODES = ("single", "long", "load50")
SCALING = {"scaling-1k", "scaling-4k", "scaling-2chats", "scaling-4chats"}
SCENARIOS = {"burst", "groups", "history", "replicas-1", "replicas-2", "media",
             *(f"{name}-{mode}" for name in BOTH_MODES for mode in ("edit", "draft")), *SCALING}
SCENARIO_KEYS = {
    "turns", "completed", "lost", "duplicated_answers", "rate_limits", "telegram", "latency_ms",
    "cpu_seconds_per_turn", "peak_rss_mb", "redis", "agent", "bot", "targets", "stream_mode",
}


def test_quick_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    names = [arg for name in (*BENCH_SCENARIOS, "scaling") for arg in ("--scenario", name)]
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench", "--quick", *names, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scenario" in proc.stdout and "turns per replica" in proc.stdout
    assert "cpu s/1k chars" in proc.stdout  # the scaling table
    assert "final p99 <= 150 ms" in proc.stdout and "single-edit <= 0.16" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith(("all targets met", "MISSED"))
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert set(report["scenarios"]) == SCENARIOS
    assert "draft_vs_edit_cpu" in report and "targets_met" in report
    assert set(report["draft_vs_edit_cpu"]) == set(BOTH_MODES)
    for name, figures in report["scenarios"].items():
        assert figures.keys() >= SCENARIO_KEYS, name
        assert figures["lost"] == 0, (name, figures["lost_markers"], figures["bot"])
        assert figures["completed"] == figures["turns"] > 0, name
        assert {"too_many_requests", "violations"} <= figures["rate_limits"].keys()
        assert {"first", "first_budget", "final"} <= figures["latency_ms"].keys()
        for latency in ("first", "final"):
            assert {"p50", "p99", "max"} <= figures["latency_ms"][latency].keys()
        assert {"commands_per_turn", "round_trips_per_turn"} <= figures["redis"].keys()
        assert figures["redis"]["round_trips_per_turn_by_kind"], name
        assert figures["telegram"]["calls_per_turn"] > 0
        assert figures["bot"]["exit_code"] == 0, figures["bot"]
    assert report["scenarios"]["history"]["history"]["mismatches"] == 0
    assert report["scenarios"]["history"]["config"]["think_seconds"] > 0
    for name in BOTH_MODES:  # each mode streams its own way, then sends the final text
        edit, draft = report["scenarios"][f"{name}-edit"], report["scenarios"][f"{name}-draft"]
        assert (edit["stream_mode"], draft["stream_mode"]) == ("edit", "draft")
        assert edit["telegram"]["drafts_per_turn"] == 0 < edit["telegram"]["edits_per_turn"]
        assert draft["telegram"]["edits_per_turn"] == 0 < draft["telegram"]["drafts_per_turn"]
        assert edit["telegram"]["sends_per_turn"] >= 1 and draft["telegram"]["sends_per_turn"] >= 1
        assert draft["latency_ms"]["first"]["n"] == edit["turns"]  # a draft's text is first text
    for n in (1, 2):
        figures = report["scenarios"][f"replicas-{n}"]
        assert figures["replicas"] == n and len(figures["per_replica"]) == n
        assert figures["duplicated_answers"] == 0, figures["duplicated_markers"]
        assert figures["agent"]["rejected_concurrency"] == 0
        assert figures["webhook"]["redelivered"] >= 1  # update 10 came twice, and was dropped
        assert figures["throughput_turns_per_second"] > 0
        assert all(r["redis_round_trips"] > 0 for r in figures["per_replica"])
    for name in SCALING:  # edit mode; only correctness is judged
        figures = report["scenarios"][name]
        assert figures["stream_mode"] == "edit"
        assert "final_p99_ms" not in figures["targets"]
    many = report["scenarios"]["scaling-4chats"]["config"]
    assert many["agent_max_concurrent"] == 100
    assert many["bot_settings"]["YUANQI_MAX_CONCURRENCY"] == "100"
    _full_size_targets(report["scenarios"])


async def test_fake_yuanqi_records_first_text_and_last_byte_times() -> None:
    async with FakeYuanqi() as fake:
        fake.script(Stream(["Hel", "lo"], chunk_delay=0.05))
        body = {"assistant_id": ASSISTANT_ID, "user_id": "u1", "stream": True,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
        headers = {"Authorization": f"Bearer {YUANQI_TOKEN}", "X-Source": "openapi"}
        async with aiohttp.ClientSession() as session, session.post(
            fake.url, json=body, headers=headers
        ) as resp:
            await resp.read()
        (rec,) = fake.requests
        assert rec.first_text_at is not None and rec.last_byte_at is not None
        assert rec.at <= rec.first_text_at
        assert rec.last_byte_at - rec.first_text_at >= 0.04


def _full_size_targets(rows: dict[str, dict[str, Any]]) -> None:
    """Judged as a full-size run, the rows get the issue's targets (CPU is left out of --quick)."""
    for row in rows.values():
        assert "cpu_seconds_per_turn" not in row["targets"]
        assert "cpu_vs_edit" not in row["targets"]
    targets = evaluate("load50", "load50-edit", rows["load50-edit"], 1.0)
    assert targets["final_p99_ms"]["limit"] == 150
    assert targets["first_budget_p99_ms"]["limit"] == 250
    assert targets["cpu_seconds_per_turn"]["limit"] == 0.035
    assert evaluate("long", "long-edit", rows["long-edit"], 1.0)["cpu_seconds_per_turn"]["limit"] == 0.8
    assert evaluate("burst", "burst", rows["burst"], 1.0)["final_p99_ms"]["limit"] == 1100
    assert evaluate("groups", "groups", rows["groups"], 3.0)["final_p99_ms"]["limit"] == 3100
    assert "cpu_seconds_per_turn" not in evaluate("single", "single-draft", rows["single-draft"], 1.0)
    ratios = draft_vs_edit(rows)
    assert set(ratios) == set(BOTH_MODES)
    for name in BOTH_MODES:
        judged = rows[f"{name}-draft"]["targets"]["cpu_vs_edit"]
        assert judged["limit"] == 1.5 and judged["value"] == ratios[name]
    table = render_table(rows, ratios)
    assert "CPU per answer, load50-draft / load50-edit" in table
    assert "cpu_vs_edit" in table and "(full-size runs only" not in table
