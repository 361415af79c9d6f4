"""Liveness, readiness and Prometheus routes for the bot's aiohttp app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

log = logging.getLogger(__name__)

#: Says whether this process can take work now, and if not, why (the reason is shown on /readyz).
ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]


class MetricsSource(Protocol):
    """What /metrics needs; ``bot.metrics.Metrics`` is one."""

    async def refresh(self) -> None: ...

    def render(self) -> tuple[bytes, str]: ...


def add_health_routes(
    app: web.Application, *, ready: ReadyCheck, metrics: MetricsSource, ready_timeout: float = 2.0
) -> None:
    """Add ``GET /healthz``, ``GET /readyz`` and ``GET /metrics`` to ``app``."""

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(ready_timeout):
                ok, reason = await ready()
        except TimeoutError:
            ok, reason = False, f"readiness check took longer than {ready_timeout:g} s"
        except Exception as exc:  # a broken check means "not ready", never a 500
            log.warning("readiness check failed: %r", exc)
            ok, reason = False, f"readiness check failed: {type(exc).__name__}"
        return web.Response(status=200 if ok else 503, text=reason or ("ok" if ok else "not ready"))

    async def metrics_view(request: web.Request) -> web.Response:
        await metrics.refresh()
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
