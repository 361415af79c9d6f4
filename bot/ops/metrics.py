"""Prometheus metrics for one bot process, in their own registry, with scrape-time refreshers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

#: Seconds, from a quick agent hop (50 ms) to a long streamed answer (2 min).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

#: Sets gauges that live elsewhere (Redis) just before a scrape; takes no arguments, returns nothing.
Refresher = Callable[[], Awaitable[None]]


class Metrics:
    """Every metric the bot exports, registered in a private ``CollectorRegistry``."""

    def __init__(self, *, namespace: str = "yuanqi_bot", refresh_timeout: float = 2.0) -> None:
        self.registry = CollectorRegistry()
        self._refreshers: list[Refresher] = []
        self._refresh_timeout = refresh_timeout
        counter = partial(Counter, namespace=namespace, registry=self.registry)
        gauge = partial(Gauge, namespace=namespace, registry=self.registry)
        histogram = partial(Histogram, namespace=namespace, registry=self.registry, buckets=LATENCY_BUCKETS)
        self.turns = counter("turns", "Conversation turns, by outcome.", ["outcome"])
        self.agent_errors = counter("agent_errors", "Failed agent calls, by kind.", ["kind"])
        self.agent_latency = histogram("agent_latency_seconds", "From the agent call to its last byte.")
        self.first_text_latency = histogram(
            "first_text_latency_seconds", "From the user's message to the first answer text shown."
        )
        self.final_text_latency = histogram(
            "final_text_latency_seconds", "From the user's message to the final answer text shown."
        )
        self.telegram_calls = counter("telegram_calls", "Bot API calls made, by method.", ["method"])
        self.telegram_429 = counter("telegram_429", "Bot API calls refused with 429 Too Many Requests.")
        self.queue_depth = gauge("queue_depth", "Messages waiting in conversation mailboxes.")
        self.agent_slots_in_use = gauge("agent_slots_in_use", "Agent calls in flight (slots taken).")
        self.tokens = counter("tokens", "Agent tokens used.")
        self.updates_received = counter(
            "updates_received", "Telegram updates received, by source (polling|webhook).", ["source"]
        )
        self.updates_duplicate = counter("updates_duplicate", "Telegram updates dropped as already seen.")

    def add_refresher(self, refresher: Refresher) -> None:
        """Run ``refresher`` before every render, e.g. to copy a Redis-held count into a gauge."""
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        """Await every refresher concurrently; one that fails or overruns is logged and skipped."""
        await asyncio.gather(*(self._run(refresher) for refresher in self._refreshers))

    async def _run(self, refresher: Refresher) -> None:
        try:
            async with asyncio.timeout(self._refresh_timeout):
                await refresher()
        except Exception as exc:  # a scrape must survive a Redis outage or any refresher bug
            log.warning("metrics refresher %s failed: %r", _name(refresher), exc)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _name(refresher: Refresher) -> str:
    return getattr(refresher, "__qualname__", None) or repr(refresher)
