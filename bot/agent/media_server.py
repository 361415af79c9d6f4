"""The bot's own media endpoint: serves a Telegram file only for a valid, unexpired signed link.

Files are streamed from Telegram chunk by chunk, never held whole; at most ``max_downloads``
are served at once, and a request that cannot get a turn within ``queue_wait`` gets 503.
Telegram's file URL holds the bot token, so it is never logged and never leaves the bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.agent.media import Located, MediaError, MediaFetcher, MediaTooLarge
from bot.agent.signing import verify

log = logging.getLogger(__name__)

MAX_DOWNLOADS = 8
QUEUE_WAIT = 5.0  # seconds a request may wait for a download slot before 503
CHUNK = 64 * 1024
_HEADERS = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}
_SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("media_session", aiohttp.ClientSession)


def media_app(
    fetcher: MediaFetcher, secret: bytes, *, wall: Callable[[], float] = time.time,
    max_downloads: int = MAX_DOWNLOADS, queue_wait: float = QUEUE_WAIT,
) -> web.Application:
    gate = asyncio.Semaphore(max_downloads)

    async def serve(request: web.Request) -> web.StreamResponse:
        kind, file_id = request.match_info["kind"], request.match_info["file_id"]
        expires, sig = request.query.get("exp", ""), request.query.get("sig", "")
        if not verify(secret, file_id, kind, expires, sig, wall()):
            log.info("refused a media request with a bad or expired signature")
            return web.Response(status=403, text="forbidden")
        try:
            async with asyncio.timeout(queue_wait):
                await gate.acquire()
        except TimeoutError:
            log.warning("media endpoint busy: %d downloads running", max_downloads)
            return web.Response(status=503, text="busy", headers={"Retry-After": "2"})
        try:
            return await _serve_file(request, fetcher, file_id, kind)
        finally:
            gate.release()

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_read=60)) as client:
            app[_SESSION] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_get("/media/{kind}/{file_id}", serve)
    return app


async def _serve_file(
    request: web.Request, fetcher: MediaFetcher, file_id: str, kind: str
) -> web.StreamResponse:
    try:
        located = await fetcher.locate(file_id, kind)
    except MediaTooLarge:
        return web.Response(status=413, text="too large")
    except MediaError as exc:
        log.warning("media fetch failed: %s", exc)
        return web.Response(status=404, text="not found")
    try:
        async with request.app[_SESSION].get(located.url) as upstream:
            if upstream.status != 200:
                log.warning("media fetch failed: Telegram answered %d", upstream.status)
                return web.Response(status=404, text="not found")
            if (upstream.content_length or 0) > fetcher.max_bytes:
                return web.Response(status=413, text="too large")
            return await _relay(request, upstream, located, fetcher.max_bytes)
    except (aiohttp.ClientError, TimeoutError) as exc:  # the message may hold the URL: type only
        log.warning("media fetch failed: %s", type(exc).__name__)
        return web.Response(status=404, text="not found")


async def _relay(
    request: web.Request, upstream: aiohttp.ClientResponse, located: Located, limit: int
) -> web.StreamResponse:
    """Pass Telegram's body on as it arrives; cut the connection if it grows past ``limit``."""
    response = web.StreamResponse(headers=_HEADERS)
    response.content_type = located.mime
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    await response.prepare(request)
    sent = 0
    try:
        async for chunk in upstream.content.iter_chunked(CHUNK):
            sent += len(chunk)
            if sent > limit:
                log.warning("media fetch stopped: the file grew past %d bytes", limit)
                return _cut(request, response)
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:  # the message may hold the URL: type only
        log.warning("media fetch broke mid-file: %s", type(exc).__name__)
        return _cut(request, response)
    await response.write_eof()
    return response


def _cut(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """End a response already begun so the client sees it incomplete, not a short file."""
    if request.transport is not None:
        request.transport.close()
    return response
