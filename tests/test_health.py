"""health: /healthz, /readyz (with a bounded readiness check) and /metrics on the bot's aiohttp app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.ops.health import ReadyCheck, add_health_routes
from bot.ops.metrics import Metrics

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def ready_with(ok: bool, reason: str) -> ReadyCheck:
    async def check() -> tuple[bool, str]:
        return ok, reason

    return check


ALWAYS_READY = ready_with(True, "ok")


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Serves a fresh app with the health routes on 127.0.0.1 and returns a client for it."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def start(
        ready: ReadyCheck = ALWAYS_READY, metrics: Metrics | None = None, ready_timeout: float = 2.0
    ) -> TestClient[web.Request, web.Application]:
        app = web.Application()
        add_health_routes(app, ready=ready, metrics=metrics or Metrics(), ready_timeout=ready_timeout)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def test_healthz_says_ok(make_client: MakeClient) -> None:
    """/healthz answers 200 "ok" whenever the process is serving."""
    client = await make_client(ready=ready_with(False, "redis down"))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.text() == "ok"


async def test_readyz_is_200_when_ready(make_client: MakeClient) -> None:
    """/readyz answers 200 when the readiness check says ok."""
    client = await make_client(ready=ready_with(True, "ok"))
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.text() == "ok"


async def test_readyz_is_503_with_the_reason_when_not_ready(make_client: MakeClient) -> None:
    """/readyz answers 503 and the check's reason when it says not ready."""
    client = await make_client(ready=ready_with(False, "redis unreachable"))
    response = await client.get("/readyz")
    assert response.status == 503
    assert await response.text() == "redis unreachable"


async def test_readyz_is_503_when_the_check_raises(make_client: MakeClient) -> None:
    """A readiness check that raises gives 503 naming the error type, not its (possibly secret) message."""

    async def broken() -> tuple[bool, str]:
        raise ConnectionError("redis://:hunter2@redis:6379 refused")

    client = await make_client(ready=broken)
    response = await client.get("/readyz")
    assert response.status == 503
    text = await response.text()
    assert "ConnectionError" in text
    assert "hunter2" not in text


async def test_readyz_is_503_when_the_check_is_too_slow(make_client: MakeClient) -> None:
    """A readiness check still running at the timeout gives 503 instead of a hung probe."""

    async def hangs() -> tuple[bool, str]:
        await asyncio.Event().wait()
        return True, "ok"

    client = await make_client(ready=hangs, ready_timeout=0.01)
    response = await client.get("/readyz")
    assert response.status == 503
    assert "took longer than" in await response.text()


async def test_metrics_refreshes_then_renders_in_prometheus_format(make_client: MakeClient) -> None:
    """/metrics runs the refreshers and answers 200 with the exposition body and content type."""
    metrics = Metrics()
    metrics.turns.labels(outcome="ok").inc()

    async def depth() -> None:
        metrics.queue_depth.set(5)

    metrics.add_refresher(depth)
    client = await make_client(metrics=metrics)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == metrics.render()[1]
    body = await response.text()
    assert 'yuanqi_bot_turns_total{outcome="ok"} 1.0' in body
    assert "yuanqi_bot_queue_depth 5.0" in body


async def test_metrics_survives_a_failing_refresher(make_client: MakeClient) -> None:
    """A refresher that raises (Redis down) still leaves /metrics answering 200."""
    metrics = Metrics()

    async def broken() -> None:
        raise ConnectionError("redis is down")

    metrics.add_refresher(broken)
    client = await make_client(metrics=metrics)
    response = await client.get("/metrics")
    assert response.status == 200
    assert "yuanqi_bot_turns_total" in await response.text()
