"""Attachments as content parts the agent can read, without ever exposing the bot token.

Two transports: ``inline`` downloads the file in the bot and sends a base64 ``data:`` URL;
``signed`` sends a link to the bot's own media endpoint (see media_server.py), which fetches the
file from Telegram server-side. Telegram's own file URLs (they contain the token) never leave.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Bot
from telegram.error import TelegramError

from bot.agent.signing import signed_url
from bot.tg.incoming import Attachment

Part = dict[str, Any]
_DEFAULT_MIME = {"image": "image/jpeg", "audio": "audio/ogg", "video": "video/mp4",
                 "pdf": "application/pdf", "txt": "text/plain"}
#: Files larger than this are base64-encoded in a worker thread, off the event loop.
ENCODE_IN_THREAD_BYTES = 256 * 1024
#: Turns whose attachments are downloaded and encoded at once (inline transport); others wait.
MAX_PREPARING = 4


class MediaError(Exception):
    """A file could not be made available to the agent."""


class MediaTooLarge(MediaError):
    pass


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes | bytearray
    mime: str


@dataclass(frozen=True, slots=True)
class Located:
    """Where Telegram serves a file (the URL holds the bot token: never log or expose it)."""

    url: str
    size: int | None
    mime: str


class MediaFetcher:
    """Downloads files from Telegram (server-side, through PTB) within a size limit."""

    def __init__(self, bot: Bot, max_bytes: int) -> None:
        self._bot = bot
        self.max_bytes = max_bytes

    async def locate(self, file_id: str, kind: str, limit: int | None = None) -> Located:
        """Ask Telegram for the file; refuse it when its declared size is over ``limit``."""
        limit = self.max_bytes if limit is None else min(limit, self.max_bytes)
        try:
            file = await self._bot.get_file(file_id)
        except TelegramError as exc:
            raise MediaError(f"download failed: {exc.message}") from None
        if file.file_size and file.file_size > limit:
            raise MediaTooLarge(f"{file.file_size} bytes")
        if not file.file_path:
            raise MediaError("Telegram gave no file path")
        guessed = mimetypes.guess_type(file.file_path)[0]
        return Located(file.file_path, file.file_size,
                       guessed or _DEFAULT_MIME.get(kind, "application/octet-stream"))

    async def fetch(self, file_id: str, kind: str, limit: int | None = None) -> MediaFile:
        """The whole file, refused over ``limit`` (and always over ``max_bytes``)."""
        limit = self.max_bytes if limit is None else min(limit, self.max_bytes)
        try:
            file = await self._bot.get_file(file_id)
            if file.file_size and file.file_size > limit:
                raise MediaTooLarge(f"{file.file_size} bytes")
            data = await file.download_as_bytearray()
        except TelegramError as exc:
            raise MediaError(f"download failed: {exc.message}") from None
        if len(data) > limit:
            raise MediaTooLarge(f"{len(data)} bytes")
        guessed = mimetypes.guess_type(file.file_path or "")[0]
        return MediaFile(data, guessed or _DEFAULT_MIME.get(kind, "application/octet-stream"))


class _Budget:
    """The bytes one turn's attachments may still take."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, size: int) -> None:
        if size > self.left:
            raise MediaTooLarge(f"the turn's attachments exceed its limit by {size - self.left} bytes")
        self.left -= size


def data_url(media: MediaFile) -> str:
    return f"data:{media.mime};base64,{base64.b64encode(media.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class MediaConfig:
    style: Literal["image_url", "file_url"]
    base_url: str | None  # signed links when set, inline data URLs otherwise
    link_ttl: int
    secret: bytes
    max_turn_bytes: int = 20 * 1024 * 1024  # all attachments of one turn together


class MediaParts:
    """Turns attachments into API content parts with the configured transport and shape."""

    def __init__(
        self, fetcher: MediaFetcher, config: MediaConfig, *, wall: Callable[[], float] = time.time
    ) -> None:
        self._fetcher = fetcher
        self._config = config
        self._wall = wall
        self._preparing = asyncio.Semaphore(MAX_PREPARING)

    @property
    def signed(self) -> bool:
        return self._config.base_url is not None

    def accepts(self, kind: str) -> bool:
        """Images always; other kinds only in the ``file_url`` style, which can type them."""
        return kind == "image" or self._config.style == "file_url"

    def check(self, attachments: Sequence[Attachment]) -> None:
        """MediaTooLarge when the sizes Telegram reported are already over a limit (no I/O)."""
        declared = 0
        for item in attachments:
            if item.size is not None and item.size > self._fetcher.max_bytes:
                raise MediaTooLarge(f"{item.size} bytes")
            declared += item.size or 0
        _Budget(self._config.max_turn_bytes).take(declared)

    async def parts(self, attachments: Sequence[Attachment]) -> list[Part]:
        """Content parts in order; MediaTooLarge when a file or the turn's total is over its limit."""
        self.check(attachments)  # refused before anything is downloaded
        if self.signed:
            return [self._part(item.kind, self._link(item.file_id, item.kind)) for item in attachments]
        budget = _Budget(self._config.max_turn_bytes)  # from here on, the bytes actually received
        async with self._preparing:
            return [self._part(item.kind, await self._inline(item, budget)) for item in attachments]

    def link_parts(self, file_ids: Sequence[str]) -> list[Part]:
        """Freshly signed links to earlier images (signed transport only)."""
        if not self.signed:
            return []
        return [self._part("image", self._link(fid, "image")) for fid in file_ids]

    async def _inline(self, item: Attachment, budget: _Budget) -> str:
        media = await self._fetcher.fetch(item.file_id, item.kind, limit=budget.left)
        budget.take(len(media.data))
        if len(media.data) > ENCODE_IN_THREAD_BYTES:
            return await asyncio.to_thread(data_url, media)
        return data_url(media)

    def _link(self, file_id: str, kind: str) -> str:
        assert self._config.base_url is not None
        expires = int(self._wall()) + self._config.link_ttl
        return signed_url(self._config.base_url, self._config.secret, file_id, kind, expires)

    def _part(self, kind: str, url: str) -> Part:
        if self._config.style == "file_url":
            return {"type": "file_url", "file_url": {"type": kind, "url": url}}
        return {"type": "image_url", "image_url": {"url": url}}
