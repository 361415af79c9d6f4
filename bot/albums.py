"""Albums: several photo messages sharing a ``media_group_id`` become one user turn.

The first message of an album is handled; later ones are claimed here (before any lock) and
folded into it. Its handler waits until no new part has arrived for ``wait`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message

from bot.clock import Clock

STALE_AFTER = 300.0  # an album nobody gathered (e.g. not addressed to the bot) is dropped


@dataclass
class _Album:
    items: list[Message]
    last: float


class Albums:
    def __init__(self, clock: Clock, wait: float) -> None:
        self._clock = clock
        self._wait = wait
        self._open: dict[str, _Album] = {}

    def claim(self, message: Message) -> bool:
        """True when ``message`` joined an album already open (so it needs no handling of its own)."""
        group = message.media_group_id
        if group is None:
            return False
        now = self._clock.now()
        album = self._open.get(group)
        if album is not None:
            album.items.append(message)
            album.last = now
            return True
        self._open = {g: a for g, a in self._open.items() if now - a.last < STALE_AFTER}
        self._open[group] = _Album([message], now)
        return False

    async def gather(self, message: Message) -> list[Message]:
        """All parts of ``message``'s album, once it has been quiet for ``wait`` seconds."""
        group = message.media_group_id
        album = self._open.get(group) if group else None
        if album is None:
            return [message]
        while (left := album.last + self._wait - self._clock.now()) > 0:
            await self._clock.sleep(left)
        self._open.pop(group, None)  # type: ignore[arg-type]
        return sorted(album.items, key=lambda m: m.message_id)
