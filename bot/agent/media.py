"""Attachments as content parts the agent can read, without ever exposing the bot token.

Two transports: ``inline`` downloads the file in the bot and sends a base64 ``data:`` URL;
``signed`` sends a link to the bot's own media endpoint (see media_server.py), which fetches the
file from Telegram server-side. Telegram's own file URLs (they contain the token) never leave.
"""

from __future__ import annotations

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


class MediaError(Exception):
    """A file could not be made available to the agent."""


class MediaTooLarge(MediaError):
    pass


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes
    mime: str


class MediaFetcher:
    """Downloads files from Telegram (server-side, through PTB) within a size limit."""

    def __init__(self, bot: Bot, max_bytes: int) -> None:
        self._bot = bot
        self.max_bytes = max_bytes

    async def fetch(self, file_id: str, kind: str) -> MediaFile:
        try:
            file = await self._bot.get_file(file_id)
            if file.file_size and file.file_size > self.max_bytes:
                raise MediaTooLarge(f"{file.file_size} bytes")
            data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise MediaError(f"download failed: {exc.message}") from None
        if len(data) > self.max_bytes:
            raise MediaTooLarge(f"{len(data)} bytes")
        guessed = mimetypes.guess_type(file.file_path or "")[0]
        return MediaFile(data, guessed or _DEFAULT_MIME.get(kind, "application/octet-stream"))


@dataclass(frozen=True, slots=True)
class MediaConfig:
    style: Literal["image_url", "file_url"]
    base_url: str | None  # signed links when set, inline data URLs otherwise
    link_ttl: int
    secret: bytes


class MediaParts:
    """Turns attachments into API content parts with the configured transport and shape."""

    def __init__(
        self, fetcher: MediaFetcher, config: MediaConfig, *, wall: Callable[[], float] = time.time
    ) -> None:
        self._fetcher = fetcher
        self._config = config
        self._wall = wall

    @property
    def signed(self) -> bool:
        return self._config.base_url is not None

    def accepts(self, kind: str) -> bool:
        """Images always; other kinds only in the ``file_url`` style, which can type them."""
        return kind == "image" or self._config.style == "file_url"

    async def parts(self, attachments: Sequence[Attachment]) -> list[Part]:
        for item in attachments:
            if item.size is not None and item.size > self._fetcher.max_bytes:
                raise MediaTooLarge(f"{item.size} bytes")
        return [self._part(item.kind, await self._url(item)) for item in attachments]

    def link_parts(self, file_ids: Sequence[str]) -> list[Part]:
        """Freshly signed links to earlier images (signed transport only)."""
        if not self.signed:
            return []
        return [self._part("image", self._link(fid, "image")) for fid in file_ids]

    async def _url(self, item: Attachment) -> str:
        if self.signed:
            return self._link(item.file_id, item.kind)
        media = await self._fetcher.fetch(item.file_id, item.kind)
        return f"data:{media.mime};base64,{base64.b64encode(media.data).decode()}"

    def _link(self, file_id: str, kind: str) -> str:
        assert self._config.base_url is not None
        expires = int(self._wall()) + self._config.link_ttl
        return signed_url(self._config.base_url, self._config.secret, file_id, kind, expires)

    def _part(self, kind: str, url: str) -> Part:
        if self._config.style == "file_url":
            return {"type": "file_url", "file_url": {"type": kind, "url": url}}
        return {"type": "image_url", "image_url": {"url": url}}
