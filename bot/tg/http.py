"""PTB's HTTP transport, counting Bot API calls by method and the 429s Telegram answers."""

from __future__ import annotations

from typing import Any

from telegram.request import HTTPXRequest

from bot.ops.metrics import Metrics


class CountingRequest(HTTPXRequest):
    def __init__(self, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        # The URL holds the bot token: only its last segment, the method name, is kept.
        self._metrics.telegram_calls.labels(method=url.rsplit("/", 1)[-1]).inc()
        code, payload = await super().do_request(url, method, *args, **kwargs)
        if code == 429:
            self._metrics.telegram_429.inc()
        return code, payload
