"""The bench runs: ``python -m bench --quick`` exits 0 with complete JSON, no lost turns, and
(``replicas``: 10 chats by webhook on 1 and 2 replica processes) no answer given twice;
``single`` and ``long`` run once per streaming mode (edits, native drafts).

No timing is asserted here: the bench measures, it does not judge (see README, Benchmark).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, FakeYuanqi, Stream

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"single-edit", "single-draft", "burst", "groups", "long-edit", "long-draft", "history",
             "replicas-1", "replicas-2", "media"}
SCENARIO_KEYS = {
    "turns", "completed", "lost", "duplicated_answers", "rate_limits", "telegram", "latency_ms",
    "cpu_seconds_per_turn", "peak_rss_mb", "redis", "agent", "bot", "targets", "stream_mode",
}


def test_quick_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scenario" in proc.stdout and "long / single" in proc.stdout
    assert "turns per replica" in proc.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert set(report["scenarios"]) == SCENARIOS
    assert "long_vs_single_cpu" in report and "targets_met" in report
    assert set(report["long_vs_single_cpu"]) == {"edit", "draft"}
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
    for name in ("single", "long"):  # each mode streams its own way, then sends the final text
        edit, draft = report["scenarios"][f"{name}-edit"], report["scenarios"][f"{name}-draft"]
        assert (edit["stream_mode"], draft["stream_mode"]) == ("edit", "draft")
        assert edit["telegram"]["drafts_per_turn"] == 0 < edit["telegram"]["edits_per_turn"]
        assert draft["telegram"]["edits_per_turn"] == 0 < draft["telegram"]["drafts_per_turn"]
        assert edit["telegram"]["sends_per_turn"] >= 1 and draft["telegram"]["sends_per_turn"] >= 1
        assert draft["latency_ms"]["first"]["n"] == 1  # a draft with text counts as first text
    for n in (1, 2):
        figures = report["scenarios"][f"replicas-{n}"]
        assert figures["replicas"] == n and len(figures["per_replica"]) == n
        assert figures["duplicated_answers"] == 0, figures["duplicated_markers"]
        assert figures["agent"]["rejected_concurrency"] == 0
        assert figures["webhook"]["redelivered"] >= 1  # update 10 came twice, and was dropped
        assert figures["throughput_turns_per_second"] > 0
        assert all(r["redis_round_trips"] > 0 for r in figures["per_replica"])


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
