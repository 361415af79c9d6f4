"""The messages that make one turn: an album's parts, or messages sent while the last turn ran.

The dispatcher gathers them from the chat's mailbox, whichever replica received them, and hands
the first to the handlers; ``gather`` gives the handler all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from telegram import Message


class TurnParts:
    def __init__(self) -> None:
        self._open: dict[tuple[int, int], list[Message]] = {}

    @contextlib.contextmanager
    def holding(self, parts: Sequence[Message]) -> Iterator[None]:
        """Make ``parts`` (one turn's messages) known while the turn is handled."""
        first = parts[0] if parts else None
        if first is None or len(parts) < 2:
            yield
            return
        key = (first.chat_id, first.message_id)
        self._open[key] = sorted(parts, key=lambda m: m.message_id)
        try:
            yield
        finally:
            self._open.pop(key, None)

    def gather(self, message: Message) -> list[Message]:
        """All messages of the turn ``message`` leads, oldest first (just ``message`` when alone)."""
        parts = self._open.get((message.chat_id, message.message_id))
        return list(parts) if parts else [message]
