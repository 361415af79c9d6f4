"""LiveReply against a recording target and a manual clock: pacing, coalescing, 429s, splitting."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from bot.reply.live import LiveReply
from bot.reply.pacing import ChatPacer
from bot.reply.ports import (
    ChatUnavailable,
    Draft,
    Look,
    MessageGone,
    RateLimited,
    ReplyStats,
    TransientFailure,
)
from bot.reply.render import Chunk
from tests.conftest import ManualClock, settle


@dataclass
class Op:
    kind: str
    message_id: int
    text: str
    at: float


@dataclass
class RecordingTarget:
    clock: ManualClock
    chat_id: int = 42
    ops: list[Op] = field(default_factory=list)
    messages: dict[int, str] = field(default_factory=dict)
    failures: list[Exception] = field(default_factory=list)
    next_id: int = 100
    buttons: dict[int, tuple[str, str] | None] = field(default_factory=dict)
    draft_failures: list[Exception] = field(default_factory=list)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    async def send(self, chunk: Chunk) -> int:
        self._maybe_fail()
        self.next_id += 1
        self.messages[self.next_id] = chunk.text
        self.buttons[self.next_id] = chunk.button
        self.ops.append(Op("send", self.next_id, chunk.text, self.clock.now()))
        return self.next_id

    async def edit(self, message_id: int, chunk: Chunk) -> None:
        self._maybe_fail()
        if message_id not in self.messages:
            raise MessageGone("message to edit not found")
        self.messages[message_id] = chunk.text
        self.buttons[message_id] = chunk.button
        self.ops.append(Op("edit", message_id, chunk.text, self.clock.now()))

    async def delete(self, message_id: int) -> None:
        del self.messages[message_id]
        self.ops.append(Op("delete", message_id, "", self.clock.now()))

    async def typing(self) -> None:
        pass

    async def draft(self, draft_id: int, chunk: Chunk) -> None:
        if self.draft_failures:
            raise self.draft_failures.pop(0)
        self.ops.append(Op("draft", draft_id, chunk.text, self.clock.now()))


async def finish(reply: LiveReply, clock: ManualClock, note: str = "") -> ReplyStats:
    """Finish the reply, moving the clock along until it is done."""
    task = asyncio.get_running_loop().create_task(reply.finish(note))
    while not task.done():
        await clock.advance(0.5)
    return await task


@pytest.fixture
def target(clock: ManualClock) -> RecordingTarget:
    return RecordingTarget(clock)


@pytest.fixture
def reply(target: RecordingTarget, clock: ManualClock) -> LiveReply:
    return LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock)


async def test_first_delta_is_sent_at_once(reply: LiveReply, target: RecordingTarget) -> None:
    """The answer appears as soon as the first delta arrives, without waiting for a slot."""
    reply.append("Hello")
    await settle()
    assert [(o.kind, o.text) for o in target.ops] == [("send", "Hello")]


async def test_edits_are_spaced_and_coalesced(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """Many deltas inside one interval become a single edit carrying only the newest text."""
    reply.append("a")
    await settle()
    for word in ["b", "c", "d", "e"]:
        reply.append(word)
        await clock.advance(0.2)
    await clock.advance(0.5)
    assert [(o.kind, o.text) for o in target.ops] == [("send", "a"), ("edit", "abcde")]
    assert target.ops[1].at - target.ops[0].at == pytest.approx(1.0)


async def test_spacing_never_below_interval(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """Over a long stream, no two operations in the chat are closer than the interval."""
    for i in range(200):
        reply.append(f"word{i} ")
        await clock.advance(0.05)
    await finish(reply, clock)
    times = [o.at for o in target.ops]
    assert len(times) >= 9
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0 - 1e-9
    assert target.messages[target.ops[0].message_id].endswith("word199")


async def test_finish_shows_the_final_text_within_one_interval(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """The final state is always shown, at most one interval after the last delta."""
    reply.append("part one")
    await settle()
    reply.append(", part two")
    done_at = clock.now()
    finishing = asyncio.get_running_loop().create_task(reply.finish())
    await clock.advance(1.0)
    assert finishing.done()
    stats = await finishing
    assert target.ops[-1].text == "part one, part two"
    assert stats.final_shown is not None and stats.final_shown - done_at <= 1.0
    assert (stats.sends, stats.edits) == (1, 1)


async def test_identical_text_is_not_resent(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """A delta that does not change the rendered text causes no edit (trailing space is trimmed)."""
    reply.append("same")
    await settle()
    reply.append("   ")
    await clock.advance(2)
    await finish(reply, clock)
    assert [o.kind for o in target.ops] == ["send"]


async def test_retry_after_pauses_exactly_that_long_then_sends_newest(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """A 429 on an edit holds the chat for retry_after seconds (a streaming edit then still keeps
    the final text's reserve: one interval more), then only the newest text goes."""
    reply.append("one")
    await settle()
    target.failures.append(RateLimited(7))
    reply.append(" two")
    await clock.advance(1.0)  # the edit is tried at t+1 and refused
    failed_at = clock.now()
    reply.append(" three")
    await clock.advance(3)
    reply.append(" four")
    await clock.advance(5.5)
    edits = [o for o in target.ops if o.kind == "edit"]
    assert [e.text for e in edits] == ["one two three four"]
    assert edits[0].at == pytest.approx(failed_at + 7 + 1)
    assert reply.stats.rate_limited == 1


async def test_the_final_text_goes_out_once_the_429_is_over(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """The final text waits exactly retry_after, never less."""
    reply.append("one")
    await settle()
    target.failures.append(RateLimited(7))
    reply.append(" two")
    await clock.advance(1.0)
    failed_at = clock.now()
    task = asyncio.get_running_loop().create_task(reply.finish())
    await clock.advance(6.9)
    assert [o.kind for o in target.ops] == ["send"]
    await clock.advance(0.2)
    await task
    assert target.ops[-1].text == "one two" and target.ops[-1].at == pytest.approx(failed_at + 7)


async def test_rate_limit_is_per_chat(clock: ManualClock) -> None:
    """A 429 in one chat does not delay another chat sharing the pacer."""
    pacer = ChatPacer(clock)
    slow, fast = RecordingTarget(clock, chat_id=1), RecordingTarget(clock, chat_id=2)
    slow.failures.append(RateLimited(30))
    LiveReply(slow, pacer, interval=1, clock=clock).append("x")
    LiveReply(fast, pacer, interval=1, clock=clock).append("y")
    await clock.advance(0.1)  # the two first sends share the bot-wide budget
    assert [o.text for o in fast.ops] == ["y"]
    assert slow.ops == []
    await clock.advance(30 + 1)  # retry_after, and a streaming op keeps the final's reserve
    assert [o.text for o in slow.ops] == ["x"]


async def test_long_answer_continues_in_new_messages(clock: ManualClock) -> None:
    """Past the limit the text continues in a further message; together they hold everything."""
    target = RecordingTarget(clock)
    reply = LiveReply(target, ChatPacer(clock), interval=1, clock=clock, limit=50)
    paragraphs = [f"Paragraph number {i} has some words." for i in range(6)]
    for p in paragraphs:
        reply.append(p + "\n\n")
        await clock.advance(0.3)
    await finish(reply, clock)
    shown = [target.messages[i] for i in sorted(target.messages)]
    assert len(shown) == 6
    assert all(len(s) <= 50 for s in shown)
    assert "\n\n".join(shown) == "\n\n".join(paragraphs)


async def test_deleted_message_is_sent_again(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """If the user deleted the live message, the next update sends a new one."""
    reply.append("first")
    await settle()
    target.messages.clear()
    reply.append(" second")
    await clock.advance(1)
    await clock.advance(1)
    assert [o.kind for o in target.ops] == ["send", "send"]
    assert target.ops[-1].text == "first second"


async def test_blocked_chat_gives_up_quietly(reply: LiveReply, target: RecordingTarget) -> None:
    """When the user blocked the bot, the reply stops trying and finish returns."""
    target.failures.append(ChatUnavailable("bot was blocked by the user"))
    reply.append("hello")
    await settle()
    stats = await reply.finish()
    assert target.ops == [] and stats.sends == 0


async def test_transient_failures_are_retried_then_abandoned(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """A network hiccup is retried next slot; three in a row end the attempts."""
    target.failures.extend([TransientFailure("timed out")])
    reply.append("hi")
    await clock.advance(1)
    assert [o.text for o in target.ops] == ["hi"]
    target.failures.extend([TransientFailure("x")] * 3)
    reply.append(" there")
    await clock.advance(5)
    await finish(reply, clock)
    assert [o.text for o in target.ops] == ["hi"]


async def test_note_is_appended_in_italics(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """finish(note) adds the note as its own italic paragraph after the answer."""
    reply.append("partial answer")
    await settle()
    await finish(reply, clock, "The answer was interrupted.")
    assert target.ops[-1].text == "partial answer\n\nThe answer was interrupted."
    assert reply.text == "partial answer"


async def test_note_alone_when_nothing_was_shown(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """With no answer text at all, the note is sent as the only message."""
    await finish(reply, clock, "The agent is busy.")
    assert [(o.kind, o.text) for o in target.ops] == [("send", "The agent is busy.")]


async def test_replace_shrinks_to_fewer_messages(clock: ManualClock) -> None:
    """Replacing a long text with a short one deletes the messages no longer needed."""
    target = RecordingTarget(clock)
    reply = LiveReply(target, ChatPacer(clock), interval=1, clock=clock, limit=20)
    reply.append("aaaa aaaa aaaa\n\nbbbb bbbb bbbb")
    await clock.advance(3)
    assert len(target.messages) == 2
    reply.replace("")
    await finish(reply, clock, "blocked")
    assert list(target.messages.values()) == ["blocked"]


async def test_bot_wide_budget_spaces_operations_across_chats(clock: ManualClock) -> None:
    """Many chats starting at once are served at the bot-wide rate: at most 10 in any second."""
    pacer = ChatPacer(clock, per_second=10)
    targets = [RecordingTarget(clock, chat_id=i) for i in range(30)]
    for target in targets:
        LiveReply(target, pacer, interval=1, clock=clock).append("hi")
    for _ in range(40):
        await clock.advance(0.1)
    times = sorted(o.at for t in targets for o in t.ops)
    assert len(times) == 30
    assert all(later - earlier >= 1.0 - 1e-9 for earlier, later in zip(times, times[10:], strict=False))
    assert times[-1] - times[0] < 3.0  # and the budget is used: 30 in three seconds


async def test_journal_hears_each_operation_and_the_text_before_a_send(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """The turn journal gets the text before a new message is sent (a crash right after the send
    still finds it), then the message ids and text after every operation, the last one final."""
    heard: list[tuple[list[int], str, bool, int]] = []

    async def journal(ids: Sequence[int], text: str, final: bool) -> None:
        heard.append((list(ids), text, final, len(target.ops)))

    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, journal=journal)
    reply.append("Hello")
    await settle()
    reply.append(" world")
    await finish(reply, clock)
    first = target.ops[0].message_id
    assert heard == [
        ([], "Hello", False, 0),  # before the send: no operation made yet
        ([first], "Hello", False, 1),
        ([first], "Hello world", True, 2),
    ]


async def test_resume_edits_messages_an_earlier_reply_showed(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """A reply resumed over existing messages edits them in place instead of sending new ones."""
    target.messages[7] = "Half an"
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock)

    async def resume() -> ReplyStats:  # as ChatService.resume_interrupted does
        reply.resume([7])
        reply.append("Half an")
        return await reply.finish("interrupted")

    task = asyncio.get_running_loop().create_task(resume())
    while not task.done():
        await clock.advance(0.5)
    assert [(o.kind, o.message_id) for o in target.ops] == [("edit", 7)]
    assert target.messages[7] == "Half an\n\ninterrupted"


# --- looks: drafts, the Stop button, short answers held in groups -------------------------------

DRAFT = Draft(draft_id=7, interval=0.5, keepalive=20.0)


def kinds(target: RecordingTarget) -> list[tuple[str, str]]:
    return [(o.kind, o.text) for o in target.ops]


async def test_a_draft_grows_and_the_final_text_is_sent_as_a_message(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """In draft mode the answer grows in the draft (no edits, no messages) at the draft's own
    cadence, and only the final text becomes a real message."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, look=Look(draft=DRAFT))
    reply.append("Hel")
    await settle()
    reply.append("lo")
    await clock.advance(0.2)
    assert kinds(target) == [("draft", "Hel")]  # the next waits for the draft interval
    await clock.advance(0.4)
    assert kinds(target) == [("draft", "Hel"), ("draft", "Hello")]
    reply.append(" world")
    stats = await finish(reply, clock)
    assert kinds(target)[-1] == ("send", "Hello world")
    assert [o.kind for o in target.ops].count("send") == 1 and "edit" not in [o.kind for o in target.ops]
    assert (stats.drafts, stats.sends, stats.edits) == (2, 1, 0)


async def test_first_words_replace_a_status_draft_at_once(target: RecordingTarget, clock: ManualClock) -> None:
    """A draft showing a status line (the queue notice) gives way to the answer's first words at
    once, not a draft interval later; later words keep the draft's pace, and so does a 429."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, look=Look(draft=DRAFT))
    reply.status("In the queue")
    await settle()
    await clock.advance(0.1)
    reply.append("Hel")
    await settle()
    assert kinds(target) == [("draft", "In the queue"), ("draft", "Hel")]
    assert target.ops[-1].at == target.ops[0].at + 0.1
    reply.append("lo")
    await clock.advance(0.4)
    assert len(kinds(target)) == 2  # the pace holds for what follows the first words
    await clock.advance(0.1)
    assert kinds(target)[-1] == ("draft", "Hello")
    await finish(reply, clock)


async def test_a_silent_draft_is_refreshed_before_it_expires(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """Telegram drops a draft after about 30 s: while a tool runs for a minute, the same draft is
    sent again every keep-alive period, so the text never vanishes."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, look=Look(draft=DRAFT))
    reply.append("Let me look that up")
    await settle()
    await clock.advance(61)
    drafts = [o for o in target.ops if o.kind == "draft"]
    assert [o.text for o in drafts] == ["Let me look that up"] * 4
    assert [round(b.at - a.at) for a, b in itertools.pairwise(drafts)] == [20, 20, 20]
    await finish(reply, clock)


async def test_a_long_draft_shows_its_newest_part(target: RecordingTarget, clock: ManualClock) -> None:
    """A draft longer than one message shows the part being written, and the finished parts
    become real messages as they finish; so only the last part is left for the final text, and
    it goes out at once."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, limit=20,
                      look=Look(draft=DRAFT))
    reply.append("first paragraph.\n\nsecond one")
    await settle()
    assert kinds(target) == [("send", "first paragraph."), ("draft", "second one")]
    reply.append(" here")
    await clock.advance(0.6)
    assert kinds(target)[-1] == ("draft", "second one here")
    done_at = clock.now()
    stats = await finish(reply, clock)
    assert [t for k, t in kinds(target) if k == "send"] == ["first paragraph.", "second one here"]
    assert target.ops[-1].at == done_at and stats.edits == 0


@pytest.mark.parametrize(
    "failure", [TransientFailure("Bad Request: method not found"), TransientFailure("network")]
)
async def test_a_failed_draft_hands_over_to_edits_without_losing_text(
    target: RecordingTarget, clock: ManualClock, failure: Exception
) -> None:
    """Any draft failure (an older Bot API server, a 400) switches this reply to edits; the text
    written so far is shown at once, and the reply says so for the chat to be remembered."""
    target.draft_failures.append(failure)
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock,
                      look=Look(button=("⏹ Stop", "stop"), draft=DRAFT))
    reply.append("Hello")
    await settle()
    assert kinds(target) == [("send", "Hello")] and reply.draft_failed
    assert target.buttons[101] == ("⏹ Stop", "stop")  # edits carry the Stop button
    reply.append(" there")
    await finish(reply, clock)
    assert target.messages == {101: "Hello there"} and target.buttons[101] is None


async def test_a_rate_limited_draft_waits_and_sends_the_newest_text(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """A 429 on a draft waits out retry_after, then shows the newest text (nothing is lost)."""
    target.draft_failures.append(RateLimited(3))
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, look=Look(draft=DRAFT))
    reply.append("a")
    await settle()
    reply.append("b")
    await clock.advance(2.9)
    assert kinds(target) == []
    await clock.advance(0.2)
    assert kinds(target) == [("draft", "ab")]
    await finish(reply, clock)


async def test_the_stop_button_rides_on_the_streaming_message_and_leaves_with_the_final_text(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """In edit mode the Stop button sits under the message being written, moves to the next one
    when the answer continues in a new message, and is gone once the answer is final."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, limit=20,
                      look=Look(button=("⏹ Stop", "stop")))
    reply.append("first paragraph.")
    await settle()
    assert target.buttons == {101: ("⏹ Stop", "stop")}
    reply.append("\n\nsecond one here")
    await clock.advance(2.5)
    assert target.buttons == {101: None, 102: ("⏹ Stop", "stop")}
    await finish(reply, clock, note="⏹ Stopped.")
    assert set(target.buttons.values()) == {None}  # the note went on in a third message
    assert list(target.messages.values()) == ["first paragraph.", "second one here", "⏹ Stopped."]


async def test_a_short_group_answer_is_sent_once(target: RecordingTarget, clock: ManualClock) -> None:
    """Held answers (groups) are not shown until they reach ``hold`` characters: a short answer is
    one message, sent when final, with no edits; a long one streams once it is long enough."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, look=Look(hold=30))
    for word in ["Short ", "and ", "sweet."]:
        reply.append(word)
        await clock.advance(1.5)
    assert kinds(target) == []
    await finish(reply, clock)
    assert kinds(target) == [("send", "Short and sweet.")]

    long = RecordingTarget(clock)
    reply = LiveReply(long, ChatPacer(clock), interval=1.0, clock=clock, look=Look(hold=30))
    reply.append("x" * 29)
    await clock.advance(1.5)
    assert kinds(long) == []
    reply.append("y")
    await clock.advance(1.5)
    assert kinds(long) == [("send", "x" * 29 + "y")]
    await finish(reply, clock)


async def test_a_held_answer_shows_as_soon_as_it_is_long_enough(
    target: RecordingTarget, clock: ManualClock
) -> None:
    """While a short answer is held back no pacing slot is taken (one booked for nothing would
    hold the chat for an interval), so it shows the moment it reaches ``hold`` characters."""
    reply = LiveReply(target, ChatPacer(clock), interval=3.0, clock=clock, look=Look(hold=30))
    for _ in range(5):
        reply.append("x" * 5)
        await clock.advance(0.3)
    assert kinds(target) == []
    reply.append("y" * 10)
    await settle()
    assert kinds(target) == [("send", "x" * 25 + "y" * 10)]
    await finish(reply, clock)


async def test_a_held_answer_still_shows_its_status(target: RecordingTarget, clock: ManualClock) -> None:
    """A status line (queue, tool) is shown while a group answer is held back."""
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock, look=Look(hold=30))
    reply.status("🔎 Searching the knowledge base…")
    await settle()
    assert kinds(target) == [("send", "🔎 Searching the knowledge base…")]
    reply.append("Found it.")
    await finish(reply, clock)
    assert target.messages == {101: "Found it."}


async def test_a_status_line_shows_under_the_text_until_more_text_comes(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """Text written before a tool call stays; the tool's status shows beneath it and is replaced
    when the answer goes on."""
    reply.append("Let me check.")
    await settle()
    reply.status("🔧 Using weather…")
    await clock.advance(1.1)
    assert target.messages[101] == "Let me check.\n\n🔧 Using weather…"
    reply.append(" Sunny today.")
    await clock.advance(1.1)
    assert target.messages[101] == "Let me check. Sunny today."
    await finish(reply, clock)


async def test_a_moving_queue_notice_leaves_the_budget_to_the_answer(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """The queue notice changes at most every STATUS_EVERY seconds (showing the newest place),
    so when the answer starts the chat's budget is there and its first words go out at once."""
    reply.status("⏳ 5 ahead")
    await settle()
    for ahead in (4, 3, 2, 1):
        await clock.advance(1.0)
        reply.status(f"⏳ {ahead} ahead")
    await clock.advance(0.5)
    assert [o.text for o in target.ops] == ["⏳ 5 ahead"]
    await clock.advance(0.6)  # STATUS_EVERY after the first notice
    assert [o.text for o in target.ops] == ["⏳ 5 ahead", "⏳ 1 ahead"]
    await clock.advance(3.0)
    reply.append("The answer")
    await settle()
    assert target.ops[-1].text == "The answer" and target.ops[-1].at == clock.now()
    await finish(reply, clock)


async def test_the_first_words_replace_a_fresh_queue_notice_at_once(
    reply: LiveReply, target: RecordingTarget, clock: ManualClock
) -> None:
    """An answer that starts right after its queue notice was shown replaces it at once (it may
    spend the chat's reserve); the next streaming edit then waits for the budget to refill."""
    reply.status("⏳ you are next")
    await settle()
    await clock.advance(0.3)
    reply.append("The answer")
    await settle()
    assert [(o.text, round(o.at - target.ops[0].at, 1)) for o in target.ops] == [
        ("⏳ you are next", 0), ("The answer", 0.3)]
    reply.append(" goes on")
    await clock.advance(1.5)
    assert len(target.ops) == 2  # streaming keeps the final's reserve again
    await clock.advance(1.0)
    assert target.ops[-1].text == "The answer goes on"
    await finish(reply, clock)
