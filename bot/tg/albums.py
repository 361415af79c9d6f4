"""Albums: the parts of one album (messages sharing a ``media_group_id``) handled as one turn.

The dispatcher gathers an album's parts from the chat's mailbox, whichever replica received
them, and hands the first part to the handlers; ``gather`` gives the handler all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from telegram import Message


class Albums:
    def __init__(self) -> None:
        self._open: dict[tuple[int, str], list[Message]] = {}

    @contextlib.contextmanager
    def holding(self, parts: Sequence[Message]) -> Iterator[None]:
        """Make ``parts`` (one album's messages) known while its turn is handled."""
        first = parts[0] if parts else None
        if first is None or first.media_group_id is None:
            yield
            return
        key = (first.chat_id, first.media_group_id)
        self._open[key] = sorted(parts, key=lambda m: m.message_id)
        try:
            yield
        finally:
            self._open.pop(key, None)

    def gather(self, message: Message) -> list[Message]:
        """All parts of ``message``'s album, oldest first (just ``message`` when it has none)."""
        group = message.media_group_id
        parts = self._open.get((message.chat_id, group)) if group else None
        return list(parts) if parts else [message]
