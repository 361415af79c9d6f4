"""How each answer grows in its chat: a native draft, or edits with a Stop button.

Private chats stream into a native draft unless ``STREAM_MODE=edit`` or drafts have failed
there before (then this replica shows that chat by edits from then on). Edited answers carry a
Stop button naming their turn, and in groups an answer is held back until it is long enough to
be worth streaming: a short one is sent once, when final.
"""

from __future__ import annotations

from bot.cluster.routing import button_data
from bot.cluster.turns import TurnRecord
from bot.question import Streaming
from bot.reply.live import LiveReply
from bot.reply.ports import Draft, Look
from bot.texts import Text, say

#: Chats whose drafts failed are remembered (up to this many) and shown by edits.
MAX_NO_DRAFT_CHATS = 10_000


class Looks:
    def __init__(self, streaming: Streaming, *, stoppable: bool) -> None:
        self._streaming = streaming
        self._stoppable = stoppable
        self._no_drafts: set[int] = set()

    def of(self, chat_id: int, turn: TurnRecord | None, language: str | None) -> Look:
        """The look of an answer in ``chat_id``; drafts and the Stop button need a running
        ``turn`` (outside the dispatcher, in unit tests, there is none)."""
        streaming, private = self._streaming, chat_id > 0
        hold = 0 if private else streaming.group_hold_chars
        if turn is None:
            return Look(hold=hold)
        if private and streaming.mode != "edit" and chat_id not in self._no_drafts:
            return Look(draft=Draft(turn.draft_id, streaming.draft_interval, streaming.draft_keepalive))
        button = (say(Text.STOP_BUTTON, language), button_data(turn.update_id)) if self._stoppable else None
        return Look(button=button, hold=hold)

    def learn(self, chat_id: int, live: LiveReply) -> None:
        """A chat whose drafts failed is shown by edits from now on."""
        if live.draft_failed:
            if len(self._no_drafts) >= MAX_NO_DRAFT_CHATS:
                self._no_drafts.clear()
            self._no_drafts.add(chat_id)
