"""LiveReply: one answer shown in Telegram as it grows.

Text is appended as the agent streams it. A single background task renders the newest text and
makes at most one message operation per pacing slot: it never queues stale edits, skips
anything already shown, continues in a new message past 4096 UTF-16 units, honours
``retry_after`` for this chat only, and always shows the final state.

Two ways to show it growing (:class:`Look`): edits of real messages (optionally with a Stop
button, and holding back short answers in groups), or a native draft in a private chat,
refreshed before it expires, whose final state is sent as real messages. A draft that fails
hands over to edits without losing text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from bot.clock import Clock, sleep_unless
from bot.reply.pacing import ChatPacer, Priority, Push, next_action
from bot.reply.ports import (
    PLAIN,
    ChatUnavailable,
    Look,
    MessageGone,
    RateLimited,
    ReplyStats,
    ReplyTarget,
    TargetError,
    TransientFailure,
)
from bot.reply.render import MAX_MESSAGE_UTF16, Chunk, render
from bot.reply.surrogates import well_formed

log = logging.getLogger(__name__)

#: Told what the chat shows after each operation: message ids, the answer text, whether final.
Journal = Callable[[Sequence[int], str, bool], Awaitable[None]]

#: Consecutive transient failures after which a reply stops trying to update its messages.
MAX_FAILURES = 3
#: A status line (the queue moving) is changed at most this often: the chat's budget is kept
#: for the answer, whose first words then go out at once.
STATUS_EVERY = 5.0


class LiveReply:
    """Accumulates streamed Markdown and keeps the chat's messages in step with it."""

    def __init__(
        self, target: ReplyTarget, pacer: ChatPacer, *, interval: float, clock: Clock,
        limit: int = MAX_MESSAGE_UTF16, journal: Journal | None = None, look: Look = PLAIN,
    ) -> None:
        self._target = target
        self._pacer = pacer
        self._interval = interval
        self._clock = clock
        self._limit = limit
        self._parts: list[str] = []
        self._chars = 0  # the answer's length so far (what a held-back answer is measured by)
        self._version = 0
        self._note = ""
        self._status = ""
        self._closing = False
        self._final = asyncio.Event()  # set with _closing: the next operation shows the final text
        # set while the next operation is urgent (see _urgent): the first words, or the final
        # text; a waiting operation then asks again at once
        self._rose = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._shown: list[Chunk] = []
        self._ids: list[int] = []
        self._cache: tuple[tuple[int, str, bool, bool], list[Chunk]] | None = None
        self._journal = journal
        self._rendered = ""  # the answer text behind the cached chunks
        self._failures = 0
        self._status_at: float | None = None  # when a status line (and no answer yet) was last shown
        self._gone = asyncio.Event()  # set once the reply can no longer be shown
        self._look = look
        self._draft = look.draft  # None once drafts failed (or were never used)
        self.draft_failed = False
        self.stats = ReplyStats()

    @property
    def text(self) -> str:
        """The answer so far as valid Unicode: halves of an emoji split across deltas joined."""
        return well_formed("".join(self._parts))

    @property
    def dead(self) -> bool:
        """The reply can no longer be shown: the chat is unavailable, or operations keep failing."""
        return self._gone.is_set()

    async def wait_dead(self) -> None:
        """Return once the reply can no longer be shown (never, for a healthy reply)."""
        await self._gone.wait()

    def append(self, delta: str) -> None:
        """More of the answer; it replaces the status line."""
        first = not self._parts
        self._parts.append(delta)
        self._chars += len(delta)
        self._status = ""
        self._version += 1
        self._kick()
        if first:  # an operation waiting for a slot now carries the first words
            self._rose.set()
            self._pacer.nudge()

    def status(self, text: str) -> None:
        """Show ``text`` (in italics, under what is written so far) until more text replaces it."""
        self._status = text
        self._version += 1
        self._kick()

    def resume(self, message_ids: Sequence[int]) -> None:
        """Take over messages shown by an earlier reply: the next render edits them in place."""
        self._ids = list(message_ids)
        self._shown = [Chunk("", ()) for _ in self._ids]  # unknown content: always re-edited

    def replace(self, text: str) -> None:
        self._parts = [text] if text else []
        self._chars = len(text)
        self._version += 1
        self._kick()

    async def finish(self, note: str = "") -> ReplyStats:
        """Show the final text (plus an italic ``note``) and return once it is visible."""
        self._note = note
        self._closing = True
        self._final.set()
        self._rose.set()
        self._kick()
        self._pacer.nudge()
        assert self._task is not None
        await self._task
        self.stats.final_shown = self._clock.now()
        return self.stats

    async def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _kick(self) -> None:
        self._changed.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-reply")

    def _key(self) -> tuple[int, str, bool, bool]:
        """What the render depends on: the text's version, the note or status, a held-back half,
        and whether the answer is final (the Stop button goes, a held answer shows)."""
        if self._closing:
            return (self._version, self._note, False, True)
        tail = next((part for part in reversed(self._parts) if part), "")
        return (self._version, self._status, "\ud800" <= tail[-1:] <= "\udbff", False)

    def _wanted(self) -> list[Chunk]:
        key = self._key()
        if self._cache is None or self._cache[0] != key:
            # mid-stream, a trailing half of an emoji waits for its other half
            self._rendered = well_formed("".join(self._parts), partial=not self._closing)
            streaming = not self._closing
            held = streaming and len(self._rendered) < self._look.hold  # short answers: once, final
            chunks = render("" if held else self._rendered, note=key[1], limit=self._limit)
            if streaming and chunks and self._look.button is not None and self._draft is None:
                chunks[-1] = replace(chunks[-1], button=self._look.button)
            self._cache = (key, chunks)
        return self._cache[1]

    def _pending(self) -> bool:
        """Is there anything not yet shown? Cheap: renders only when the text has changed."""
        if self._cache is None or self._cache[0] != self._key():
            return True
        return self._shown != self._cache[1]

    async def _run(self) -> None:
        if self._draft is not None:
            await self._drafts()
        chat = self._target.chat_id
        while not self.dead:
            await self._changed.wait()
            if not self._pending() or self._holding():
                self._changed.clear()
                if self._closing:
                    return
                continue
            await self._quiet_status()
            # the chat's slot and a bot-wide one, booked; the newest text is rendered after the wait
            slot = await self._pacer.slot(
                chat, self._interval, self._priority, urgent=self._urgent, wake=self._rose
            )
            self._changed.clear()
            wanted = self._wanted()
            action = next_action(self._clock.now(), slot, self._shown, wanted)
            if isinstance(action, Push):
                await self._push(action)
            elif action is None and len(self._shown) > max(len(wanted), 0 if self._closing else 1):
                # the (replaced) text needs fewer messages than are shown; mid-stream the first
                # stays (a held-back answer, or one replaced by nothing, edits it when final)
                await self._drop()
            elif action is None and self._closing:
                return
            if self._pending():
                self._changed.set()
            elif self._closing:
                return

    async def _drafts(self) -> None:
        """Stream into the draft until the answer closes; on a failure, leave it to edits.

        Once the answer spans several messages, the finished ones become real messages as they
        finish (paced like any message), so the final text is one message, not all of them; the
        draft, which a real message dismisses, shows the part still being written."""
        last: Chunk | None = None
        next_at = blocked = 0.0  # the draft's own pace (its interval), and a 429's retry_after
        while self._draft is not None and not self._closing and not self.dead:
            draft = self._draft
            stale_at = next_at - draft.interval + draft.keepalive  # when the shown draft needs a refresh
            await self._wait_change(None if last is None else stale_at)
            await self._quiet_status()
            # the first words (replacing a status line: the queue notice) need not wait for the pace
            await self._pause(max(blocked, 0.0 if self._urgent() else next_at) - self._clock.now())
            if self._closing:
                return  # the final text goes out as real messages, which replace the draft
            self._changed.clear()
            wanted = self._wanted()
            if await self._flush(wanted[:-1]):
                last = None  # the new message dismissed the draft: show it again
                self._changed.set()
                continue
            view = wanted[-1] if wanted else None  # a draft past one message shows its newest part
            if view is None or (view == last and self._clock.now() < stale_at):
                continue
            try:
                await self._target.draft(draft.draft_id, view)
            except RateLimited as exc:  # drafts have their own budget: messages are not held
                self.stats.rate_limited += 1
                blocked = self._clock.now() + exc.retry_after
                self._changed.set()
                continue
            except ChatUnavailable as exc:
                self._give_up(exc)
                return
            except TargetError as exc:
                log.warning("drafts failed in a chat (%s); showing the answer by edits", exc)
                self._draft, self.draft_failed = None, True
                self._cache = None  # edits carry the Stop button
                self._changed.set()
                return
            last, next_at = view, self._clock.now() + draft.interval
            self._status_at = None if self._parts else self._clock.now()
            self.stats.drafts += 1
            if self.stats.first_text is None and self._parts:
                self.stats.first_text = self._clock.now()

    async def _quiet_status(self) -> None:
        """A changed status line waits until ``STATUS_EVERY`` after the last one shown, unless
        the answer's text, or its end, comes first."""
        while (self._status_at is not None and not self._parts and not self._closing
               and (until := self._status_at + STATUS_EVERY) > self._clock.now()):
            self._changed.clear()
            await self._wait_change(until)
        self._changed.set()

    async def _flush(self, finished: list[Chunk]) -> bool:
        """Make the first finished message that is not shown as it is a real one; False if none."""
        if next_action(0.0, 0.0, self._shown, finished) is None:
            return False
        slot = await self._pacer.slot(self._target.chat_id, self._interval, self._priority)
        action = next_action(self._clock.now(), slot, self._shown, self._wanted()[:-1])
        if isinstance(action, Push):
            await self._push(action)
        return True

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, but no longer than until the answer is complete."""
        if seconds > 0:
            await sleep_unless(self._clock, seconds, self._final)

    async def _wait_change(self, until: float | None) -> None:
        """Until something changed, or ``until`` (by the clock) has come."""
        if until is None:
            await self._changed.wait()
        else:
            await sleep_unless(self._clock, until - self._clock.now(), self._changed)

    def _holding(self) -> bool:
        """Is a short answer being held back with nothing else to show? Then no slot is taken:
        one booked for nothing would delay the answer's first words by an interval."""
        return (not self._closing and bool(self._parts) and not self._status
                and self._chars < self._look.hold)

    def _urgent(self) -> bool:
        """May the next operation spend the chat's reserve? The final text may, and so may the
        answer's first words: a chat whose last answer's final text spent the reserve (a busy
        group, at 3 s an operation) would otherwise show the next answer an interval late."""
        return self._closing or (self.stats.first_text is None and bool(self._parts))

    def _priority(self) -> Priority:
        if self._closing:
            return Priority.FINAL
        if not self._parts:
            return Priority.STATUS
        return Priority.UPDATE if self.stats.first_text is not None else Priority.FIRST

    async def _push(self, push: Push) -> None:
        chat = self._target.chat_id
        try:
            if push.index < len(self._ids):
                await self._target.edit(self._ids[push.index], push.chunk)
                self.stats.edits += 1
            else:
                if self._journal is not None:  # a crash after the send must still find the text
                    await self._journal(self._ids, self._rendered, False)
                self._ids.append(await self._target.send(push.chunk))
                self.stats.sends += 1
        except RateLimited as exc:
            self.stats.rate_limited += 1
            await self._pacer.block(chat, exc.retry_after)
            return
        except MessageGone:
            del self._ids[push.index :], self._shown[push.index :]
            return
        except ChatUnavailable as exc:
            self._give_up(exc)
            return
        except TransientFailure as exc:
            await self._fail(chat, exc)
            return
        self._failures = 0
        self._status_at = None if self._parts else self._clock.now()
        self._shown[push.index : push.index + 1] = [push.chunk]
        if self.stats.first_text is None and self._parts:
            self.stats.first_text = self._clock.now()
            if not self._closing:
                self._rose.clear()
        if self._journal is not None:
            await self._journal(self._ids, self._rendered, self._closing and not self._pending())

    def _give_up(self, exc: TargetError) -> None:
        """The chat can no longer be written to: the reply is dead (and its agent call stopped)."""
        log.warning("giving up on a reply: %s", exc)
        self._gone.set()

    async def _drop(self) -> None:
        """Delete messages beyond what the (replaced) text needs."""
        message_id = self._ids.pop()
        self._shown.pop()
        try:
            await self._target.delete(message_id)
        except TargetError as exc:
            log.info("could not delete a superfluous message: %s", exc)

    async def _fail(self, chat: int, exc: TargetError) -> None:
        self._failures += 1
        log.warning("message operation failed (%d/%d): %s", self._failures, MAX_FAILURES, exc)
        if self._failures >= MAX_FAILURES:
            self._gone.set()
