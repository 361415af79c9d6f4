"""Webhook intake: a Telegram POST is answered 200 only once its update is recorded in Redis."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from storage import StorageError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret

Record = Callable[[Mapping[str, Any], str], Awaitable[bool]]


def add_webhook_route(
    app: web.Application, *, path: str, secret: str, record: Record, accepting: Callable[[], bool],
) -> None:
    """Serve Telegram's update POSTs at ``path`` (see the module docstring)."""
    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning("refused a webhook request without the right secret token")
            return web.Response(status=401, text="unauthorized")
        if not accepting():  # shutting down: Telegram retries, the proxy picks another replica
            return web.Response(status=503, text="shutting down")
        body = await request.text()
        try:
            update = json.loads(body)
        except ValueError:
            update = None
        if not isinstance(update, dict):
            log.warning("refused a webhook request that is not a JSON object")
            return web.Response(status=400, text="bad update")
        try:
            await record(update, body)
        except StorageError as exc:  # not recorded: a non-2xx makes Telegram deliver it again
            log.error("could not record an update, Redis failed: %s", exc)
            return web.Response(status=503, text="storage unavailable")
        return web.Response(text="ok")

    app.router.add_post(path, receive)
