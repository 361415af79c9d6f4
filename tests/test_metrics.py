"""metrics: a private registry per Metrics, rendered in Prometheus format, with scrape-time refreshers."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.ops.metrics import LATENCY_BUCKETS, Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(metrics: Metrics) -> Samples:
    """Every sample in the rendered body, keyed by (name, labels)."""
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(f"yuanqi_bot_{name}", frozenset(labels.items()))]


def test_counters_render_with_their_labels() -> None:
    """Labelled and plain counters appear under their names with the counts added."""
    metrics = Metrics()
    metrics.turns.labels(outcome="ok").inc()
    metrics.turns.labels(outcome="ok").inc()
    metrics.turns.labels(outcome="agent_error").inc()
    metrics.agent_errors.labels(kind="timeout").inc()
    metrics.telegram_calls.labels(method="editMessageText").inc(3)
    metrics.telegram_429.inc()
    metrics.tokens.inc(120)
    metrics.updates_received.labels(source="webhook").inc()
    metrics.updates_duplicate.inc()
    assert value(metrics, "turns_total", outcome="ok") == 2
    assert value(metrics, "turns_total", outcome="agent_error") == 1
    assert value(metrics, "agent_errors_total", kind="timeout") == 1
    assert value(metrics, "telegram_calls_total", method="editMessageText") == 3
    assert value(metrics, "telegram_429_total") == 1
    assert value(metrics, "tokens_total") == 120
    assert value(metrics, "updates_received_total", source="webhook") == 1
    assert value(metrics, "updates_duplicate_total") == 1


def test_gauges_render_their_current_value() -> None:
    """Gauges show the last value set."""
    metrics = Metrics()
    metrics.queue_depth.set(7)
    metrics.agent_slots_in_use.inc()
    metrics.agent_slots_in_use.inc()
    metrics.agent_slots_in_use.dec()
    assert value(metrics, "queue_depth") == 7
    assert value(metrics, "agent_slots_in_use") == 1


@pytest.mark.parametrize("name", ["agent_latency", "first_text_latency", "final_text_latency"])
def test_latency_histograms_use_second_buckets_up_to_two_minutes(name: str) -> None:
    """Each latency histogram counts an observation into buckets from 0.05 s to 120 s."""
    metrics = Metrics()
    getattr(metrics, name).observe(0.3)
    full = f"{name}_seconds"
    assert value(metrics, f"{full}_count") == 1
    assert value(metrics, f"{full}_sum") == pytest.approx(0.3)
    assert value(metrics, f"{full}_bucket", le="0.25") == 0
    assert value(metrics, f"{full}_bucket", le="0.5") == 1
    assert LATENCY_BUCKETS[0] == 0.05 and LATENCY_BUCKETS[-1] == 120


def test_each_metrics_object_has_its_own_registry() -> None:
    """Two Metrics coexist without name clashes, and counting in one leaves the other at zero."""
    first, second = Metrics(), Metrics()
    first.tokens.inc(5)
    assert value(first, "tokens_total") == 5
    assert value(second, "tokens_total") == 0


def test_render_returns_the_prometheus_content_type() -> None:
    """The content type is Prometheus' text exposition format."""
    body, content_type = Metrics().render()
    assert content_type.startswith("text/plain; version=")
    assert b"# TYPE yuanqi_bot_turns_total counter" in body


async def test_refreshers_set_gauges_before_a_render() -> None:
    """A refresher's values are in the body rendered after ``refresh()``."""
    metrics = Metrics()
    depth = iter([4, 9])

    async def read_queue() -> None:
        metrics.queue_depth.set(next(depth))

    metrics.add_refresher(read_queue)
    await metrics.refresh()
    assert value(metrics, "queue_depth") == 4
    await metrics.refresh()
    assert value(metrics, "queue_depth") == 9


async def test_a_failing_refresher_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    """One refresher raising (say, Redis down) is logged; the rest refresh and rendering works."""
    metrics = Metrics()

    async def broken() -> None:
        raise ConnectionError("redis is down")

    async def slots() -> None:
        metrics.agent_slots_in_use.set(3)

    metrics.add_refresher(broken)
    metrics.add_refresher(slots)
    with caplog.at_level(logging.WARNING, logger="bot.ops.metrics"):
        await metrics.refresh()
    assert value(metrics, "agent_slots_in_use") == 3
    assert "broken" in caplog.text and "redis is down" in caplog.text


async def test_a_hanging_refresher_is_abandoned_after_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """A refresher that never returns is cut off at ``refresh_timeout`` so a scrape still completes."""
    metrics = Metrics(refresh_timeout=0.01)

    async def hangs() -> None:
        await asyncio.Event().wait()

    metrics.add_refresher(hangs)
    with caplog.at_level(logging.WARNING, logger="bot.ops.metrics"):
        await metrics.refresh()
    assert "hangs" in caplog.text and "TimeoutError" in caplog.text
    assert value(metrics, "queue_depth") == 0
