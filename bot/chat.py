"""ChatService: one user turn, from the question to the stored answer.

Load history, ask the agent with ``stream: true``, show the answer growing through a
LiveReply, and store the finished (question, answer) pair. A turn that fails is not stored,
so the history stays valid and the user can simply send the message again. A turn whose reply
can no longer be shown (the user blocked the bot, the chat is gone, edits keep failing) stops
at once: the agent stream is closed, its slot freed, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from bot.agent.events import Finish, TextDelta, ToolStep
from bot.agent.history import build_messages, text_part
from bot.agent.identity import log_id, user_id_for
from bot.agent.media import MediaError, MediaParts, MediaTooLarge
from bot.agent.progress import Progress
from bot.clock import Clock
from bot.cluster import turns
from bot.errors import AgentError
from bot.ops.accounting import Books, Outcome
from bot.ops.metrics import Metrics
from bot.question import (
    EDITS,
    Agent,
    AgentSlots,
    ChatLimits,
    Deferred,
    Question,
    StopWatch,
    Streaming,
    UsageBook,
)
from bot.reply.live import LiveReply
from bot.reply.looks import Looks
from bot.reply.pacing import ChatPacer
from bot.reply.ports import PLAIN, ReplyTarget, TargetError
from bot.reply.typing import keep_typing
from bot.reply.watch import Ending, while_shown
from bot.texts import Text, for_error, say
from storage import ConversationKey, HistoryStore, StorageError, Turn

log = logging.getLogger(__name__)

UNSEEN = "unseen"  # the outcome of a turn whose reply could no longer be shown
STOPPED = "stopped"  # the outcome of a turn the user stopped


class ChatService:
    def __init__(
        self, *, agent: Agent, store: HistoryStore, pacer: ChatPacer, clock: Clock,
        secret: bytes, limits: ChatLimits, agent_slots: AgentSlots, media: MediaParts,
        metrics: Metrics, usage: UsageBook, streaming: Streaming = EDITS,
        stops: StopWatch | None = None,
    ) -> None:
        self._looks = Looks(streaming, stoppable=stops is not None)
        self._stops = stops
        self._books = Books(metrics, usage, secret)
        self._typing: set[asyncio.Task[None]] = set()  # "typing" loops finishing their last call
        self._media = media
        self._agent = agent
        self._store = store
        self._pacer = pacer
        self._clock = clock
        self._secret = secret
        self._limits = limits
        self._slots = agent_slots

    async def reset(self, key: ConversationKey) -> None:
        await self._store.clear(key)

    async def last_turn(self, key: ConversationKey) -> Turn | None:
        """The conversation's newest stored turn (what /retry asks again)."""
        stored = await self._store.load(key)
        return stored[-1] if stored else None

    async def notify(self, target: ReplyTarget, text: str) -> None:
        """Send a short message of our own, paced like every other operation in the chat."""
        live = self._live(target)
        live.append(text)
        await live.finish()

    async def resume_interrupted(
        self, target: ReplyTarget, message_ids: Sequence[int], text: str, language: str | None
    ) -> None:
        """Show an answer cut short (its replica died) as it was, marked as interrupted."""
        live = self._live(target, journaled=False)
        live.resume(message_ids)
        live.append(text)
        try:
            await live.finish(say(Text.INTERRUPTED, language))
        finally:
            await live.cancel()

    async def discard(self, target: ReplyTarget, message_ids: Sequence[int]) -> None:
        """Delete leftover messages (a queue notice) of a turn that is about to run again."""
        for message_id in message_ids:
            try:
                await target.delete(message_id)
            except TargetError as exc:
                log.info("could not delete a leftover message: %s", exc)

    async def answer(self, question: Question, target: ReplyTarget) -> None:
        """Answer one question in ``target``; never raises for agent or Telegram trouble."""
        started = self._clock.now()
        journal = turns.current()
        if journal is not None and not journal.may_start():
            await journal.defer()
            return
        prepared = await self._prepare(question, target)
        if prepared is None:
            return
        history = prepared
        if question.replaces is not None and history and history[-1] == question.replaces:
            history = history[:-1]  # /retry: the answer is asked for again, without itself
        live = self._live(target, question=question)
        try:
            with self._watch(target, journal) as stopped:
                try:
                    outcome = await self._stream(question, history, live, target, stopped)
                except Deferred:
                    assert journal is not None
                    await journal.defer()
                    return
            note = say(outcome.note, question.language) if outcome.note else ""
            stats = await live.finish(note)
        finally:  # also on cancellation (shutdown): no task outlives the turn
            await live.cancel()
        self._looks.learn(target.chat_id, live)
        if live.dead:
            self._unseen(question, outcome)
        # Taking the turn off the mailbox is the commit point: a replica that lost the chat
        # (it paused past its lease) must not store a turn another replica has dealt with.
        committed = journal is None or await journal.commit()
        keep = outcome.note is None or outcome.reason == STOPPED  # a stopped answer is kept
        stored = keep and not live.dead and committed and await self._record(question, live.text)
        await self._books.close(question, outcome, stats, started=started, history=len(history),
                                stored=stored)

    def _watch(
        self, target: ReplyTarget, journal: turns.Journal | None
    ) -> contextlib.AbstractContextManager[asyncio.Event | None]:
        """The turn's stop signal, from whichever replica the user's stop reached."""
        if self._stops is None or journal is None:
            return contextlib.nullcontext()
        return self._stops.watch(str(target.chat_id), journal.record.update_id)

    def _unseen(self, question: Question, outcome: Outcome) -> None:
        """The reply can no longer be shown: say so once in the log; the turn is not stored."""
        cut = outcome.reason == UNSEEN
        outcome.reason, outcome.note = UNSEEN, None
        log.warning(
            "turn conv=%s: the reply can no longer be shown; %s, the turn is not stored",
            log_id(self._secret, question.key),
            "agent call stopped" if cut else "the agent call had already ended",
        )

    async def _prepare(self, question: Question, target: ReplyTarget) -> list[Turn] | None:
        """The stored turns, or None after telling the user why the turn cannot go ahead.

        Attachments are only checked here (the sizes Telegram reported); they are downloaded
        once an agent slot is taken, so turns queued for a slot hold no file in memory."""
        problem: Text | None = None
        if len(question.text) > self._limits.max_input_chars:
            length, limit = len(question.text), self._limits.max_input_chars
            await self.notify(target, say(Text.TOO_LONG, question.language, length=length, limit=limit))
            return None
        try:
            self._media.check(question.attachments)
            stored = await self._store.load(question.key)
        except StorageError as exc:
            log.error("history unavailable: %s", exc)
            problem = Text.STORAGE
        except MediaTooLarge:
            problem = Text.MEDIA_TOO_LARGE
        if problem is not None:
            await self.notify(target, say(problem, question.language))
            return None
        return stored

    async def _messages(self, question: Question, stored: list[Turn]) -> list[dict[str, Any]]:
        """The request: history plus the question, its attachments downloaded now."""
        files = await self._media.parts(question.attachments)
        content = ([text_part(question.text)] if question.text.strip() else []) + files
        return build_messages(
            stored, content, max_messages=self._limits.max_messages, max_chars=self._limits.max_chars,
            image_parts=self._media.link_parts, max_images=self._limits.max_images,
        )

    async def _record(self, question: Question, answer: str) -> bool:
        """Store the finished turn (in place of the one /retry regenerated); False when there was
        nothing to store or Redis failed."""
        if not answer.strip():
            return False
        images = tuple(a.file_id for a in question.attachments if a.kind == "image")
        turn = Turn(question.text, answer, time.time(), images)
        try:
            if question.replaces is not None:
                await self._store.replace_last(question.key, turn)
            else:
                await self._store.append(question.key, turn)
        except StorageError as exc:
            log.error("could not store the turn: %s", exc)
            return False
        return True

    async def _stream(
        self, question: Question, stored: list[Turn], live: LiveReply, target: ReplyTarget,
        stopped: asyncio.Event | None,
    ) -> Outcome:
        outcome = Outcome()
        try:
            call = self._call(question, stored, live, target, outcome)
            ending = await while_shown(live, call, stopped)
        except MediaTooLarge:
            outcome.note = Text.MEDIA_TOO_LARGE
            return outcome
        except MediaError as exc:
            log.warning("could not prepare an attachment: %s", exc)
            outcome.note = Text.MEDIA_FAILED
            return outcome
        except AgentError as exc:  # the agent's own words (exc.detail) go to the log, never the chat
            log.warning("agent call failed: %s", exc)
            outcome.error = type(exc).__name__
            outcome.note = for_error(exc, partial=bool(live.text.strip()))
            return outcome
        if ending is Ending.UNSEEN:
            outcome.reason = UNSEEN
        elif ending is Ending.STOPPED:
            log.info("the user stopped an answer; its agent call is closed")
            outcome.reason, outcome.note = STOPPED, Text.STOPPED
        elif outcome.reason == "sensitive":
            live.replace("")
            outcome.note = Text.SENSITIVE
        elif outcome.reason == "tool_fail":
            outcome.note = Text.TOOL_FAIL
        elif not live.text.strip():
            outcome.note = Text.EMPTY
        return outcome

    async def _call(
        self, question: Question, stored: list[Turn], live: LiveReply, target: ReplyTarget,
        outcome: Outcome,
    ) -> None:
        """Wait for an agent slot, then stream the answer into ``live`` and its end into ``outcome``."""
        journal = turns.current()

        async def waiting(ahead: int) -> None:  # every agent slot is busy: say so, not silence
            text = Text.QUEUED_AHEAD if ahead else Text.QUEUED
            live.status(say(text, question.language, ahead=ahead))

        async with self._slots.hold(waiting):
            if journal is not None and not journal.may_start():
                raise Deferred
            messages = await self._messages(question, stored)
            typing = asyncio.Event()  # set: stop; never cancel a Telegram call in flight (below)
            task = asyncio.get_running_loop().create_task(keep_typing(target, typing, self._clock))
            self._typing.add(task)
            task.add_done_callback(self._typing.discard)
            called = self._clock.now()
            stream = self._agent.stream_reply(user_id_for(self._secret, question.key), messages)
            try:
                progress = Progress(question.language)
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        if isinstance(event, TextDelta):
                            typing.set()
                            live.append(event.text)
                        elif isinstance(event, ToolStep):
                            if (line := progress.line(event)) is not None:
                                live.status(line)
                        elif isinstance(event, Finish):
                            outcome.reason, outcome.usage = event.reason, event.usage
            finally:
                typing.set()
        outcome.agent_seconds = self._clock.now() - called

    def _live(
        self, target: ReplyTarget, *, journaled: bool = True, question: Question | None = None
    ) -> LiveReply:
        interval = self._limits.interval(target.chat_id)
        journal = turns.current() if journaled else None
        turn = journal.record if journal is not None else None
        look = self._looks.of(target.chat_id, turn, question.language) if question else PLAIN
        return LiveReply(
            target, self._pacer, interval=interval, clock=self._clock,
            journal=journal.shown if journal is not None else None, look=look,
        )
