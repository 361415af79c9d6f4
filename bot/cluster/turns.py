"""The turn in flight: what its record in Redis says, and what a replica that finds it should do.

While a replica works on a chat's head update, a small record beside the mailbox tracks which
messages show the answer and how much of it they show. If the replica dies, the next holder
reads it: a finished answer needs nothing, a partial one is marked as interrupted, and a turn
that showed nothing of its answer is simply run again (up to ``MAX_ATTEMPTS`` times).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class TurnRecord:
    update_id: int
    attempt: int = 1
    message_ids: tuple[int, ...] = ()
    text: str = ""  # the answer as last shown
    final: bool = False  # the complete answer is shown
    deferred: bool = False  # put back untouched (shutdown): does not count as an attempt
    parts: tuple[int, ...] = ()  # update ids of every message in the turn (albums, combined text)
    asker: int | None = None  # who asked: they (or a group's admins) may stop the answer

    @property
    def draft_id(self) -> int:
        """The turn's native draft: non-zero, and the same on every replica and attempt."""
        return draft_id_for(self.update_id)

    def dumps(self) -> str:
        return json.dumps(
            {"u": self.update_id, "a": self.attempt, "m": list(self.message_ids), "t": self.text,
             "f": self.final, "d": self.deferred, "p": list(self.parts), "w": self.asker},
            ensure_ascii=False, separators=(",", ":"),
        )

    @classmethod
    def loads(cls, raw: str) -> TurnRecord | None:
        """The record, or None when it is missing or unreadable (then the turn starts afresh)."""
        try:
            data = json.loads(raw) if raw else None
            if not isinstance(data, dict):
                return None
            return cls(
                update_id=int(data["u"]), attempt=int(data.get("a", 1)),
                message_ids=tuple(int(i) for i in data.get("m", [])), text=str(data.get("t", "")),
                final=bool(data.get("f")), deferred=bool(data.get("d")),
                parts=tuple(int(i) for i in data.get("p", [])),
                asker=int(data["w"]) if data.get("w") is not None else None,
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable turn record")
            return None


def draft_id_for(update_id: int) -> int:
    """A draft id (a non-zero 32-bit integer) for the turn headed by ``update_id``."""
    return update_id % 2_147_483_647 + 1


class Recovery(Enum):
    FINISHED = "finished"  # the answer was complete: nothing to do
    MARK = "mark"  # part of the answer is shown: mark it interrupted
    RETRY = "retry"  # nothing of the answer was shown: run the turn again
    GIVE_UP = "give_up"  # it failed too often: tell the user to send it again


def recovery_for(record: TurnRecord) -> Recovery:
    if record.final:
        return Recovery.FINISHED
    if record.text.strip():
        return Recovery.MARK
    if record.deferred or record.attempt < MAX_ATTEMPTS:
        return Recovery.RETRY
    return Recovery.GIVE_UP


def next_attempt(record: TurnRecord) -> TurnRecord:
    """The record for running the turn again, keeping the leftover status messages to delete."""
    attempt = record.attempt if record.deferred else record.attempt + 1
    return TurnRecord(
        record.update_id, attempt, message_ids=record.message_ids, parts=record.parts,
        asker=record.asker,
    )


@dataclass
class Journal:
    """The running turn's handle: LiveReply reports what it shows, ChatService commits the turn."""

    record: TurnRecord
    save: Callable[[TurnRecord], Awaitable[bool]]
    finish: Callable[[], Awaitable[bool]]
    may_start: Callable[[], bool] = lambda: True
    committed: bool | None = None  # None until commit() ran: then whether the lease was ours
    deferred: bool = False

    async def shown(self, message_ids: Sequence[int], text: str, final: bool) -> None:
        self.record = replace(self.record, message_ids=tuple(message_ids), text=text, final=final)
        await self.save(self.record)

    async def commit(self) -> bool:
        """Take the turn off the mailbox (once); False if another replica owns the chat now."""
        if self.committed is None:
            self.committed = await self.finish()
        return self.committed

    async def defer(self) -> None:
        """Leave the turn for another replica or the next start (no agent call was made)."""
        self.deferred = True
        self.record = replace(self.record, deferred=True)
        await self.save(self.record)


_CURRENT: contextvars.ContextVar[Journal | None] = contextvars.ContextVar("turn", default=None)


def current() -> Journal | None:
    """The journal of the turn this task serves (None outside the dispatcher, e.g. in unit tests)."""
    return _CURRENT.get()


def bind(journal: Journal) -> contextvars.Token[Journal | None]:
    return _CURRENT.set(journal)


def unbind(token: contextvars.Token[Journal | None]) -> None:
    _CURRENT.reset(token)
