"""The bot's own media endpoint: serves a Telegram file only for a valid, unexpired signed link."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.agent.media import MediaError, MediaFetcher, MediaTooLarge
from bot.agent.signing import verify

log = logging.getLogger(__name__)


def media_app(
    fetcher: MediaFetcher, secret: bytes, *, wall: Callable[[], float] = time.time
) -> web.Application:
    async def serve(request: web.Request) -> web.Response:
        kind, file_id = request.match_info["kind"], request.match_info["file_id"]
        expires, sig = request.query.get("exp", ""), request.query.get("sig", "")
        if not verify(secret, file_id, kind, expires, sig, wall()):
            log.info("refused a media request with a bad or expired signature")
            return web.Response(status=403, text="forbidden")
        try:
            media = await fetcher.fetch(file_id, kind)
        except MediaTooLarge:
            return web.Response(status=413, text="too large")
        except MediaError as exc:
            log.warning("media fetch failed: %s", exc)
            return web.Response(status=404, text="not found")
        return web.Response(
            body=media.data, content_type=media.mime,
            headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    app = web.Application()
    app.router.add_get("/media/{kind}/{file_id}", serve)
    return app


async def start_media_server(app: web.Application, listen: str) -> web.AppRunner:
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()  # noqa: S104 - a container binds all
    return runner
