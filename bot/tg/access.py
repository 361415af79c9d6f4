"""Pure: who may use the bot. Both lists empty means everyone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Access:
    users: frozenset[int] = frozenset()
    chats: frozenset[int] = frozenset()

    @property
    def open(self) -> bool:
        return not self.users and not self.chats

    def allows(self, chat_id: int, user_id: int | None, *, origin: int | None = None) -> bool:
        """An allowed chat (by its id, or by ``origin``: the id it had before it became a supergroup),
        or an allowed person speaking (or, for groups, adding the bot)."""
        return (self.open or chat_id in self.chats or (origin is not None and origin in self.chats)
                or (user_id is not None and user_id in self.users))
