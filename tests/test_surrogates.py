"""well_formed(): streamed text as valid Unicode, and LiveReply using it across stream deltas."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.reply.live import LiveReply
from bot.reply.pacing import ChatPacer
from bot.reply.render import Chunk
from bot.reply.surrogates import REPLACEMENT, well_formed
from tests.conftest import ManualClock, settle

HIGH, LOW = "\ud83d", "\ude00"  # the two halves of 😀 as JSON's "\ud83d\ude00" decodes them apart


@pytest.mark.parametrize(
    ("text", "partial", "expected"),
    [
        pytest.param("plain 中文 😀", False, "plain 中文 😀", id="valid-text-untouched"),
        pytest.param(f"a{HIGH}{LOW}b", False, "a😀b", id="halves-joined"),
        pytest.param(f"a{LOW}b", False, f"a{REPLACEMENT}b", id="lone-low-replaced"),
        pytest.param(f"a{HIGH}b", False, f"a{REPLACEMENT}b", id="lone-high-replaced"),
        pytest.param(f"{LOW}{HIGH}", False, REPLACEMENT * 2, id="halves-in-the-wrong-order"),
        pytest.param(f"a{HIGH}", False, f"a{REPLACEMENT}", id="trailing-high-at-the-end"),
        pytest.param(f"a{HIGH}", True, "a", id="trailing-high-mid-stream-waits"),
        pytest.param(f"a{LOW}", True, f"a{REPLACEMENT}", id="trailing-low-mid-stream-replaced"),
        pytest.param(f"{HIGH}x{HIGH}", True, f"{REPLACEMENT}x", id="only-the-last-half-waits"),
    ],
)
def test_well_formed(text: str, partial: bool, expected: str) -> None:
    """Pairs are joined; a lone half becomes U+FFFD, except a trailing high half while more text comes."""
    assert well_formed(text, partial=partial) == expected


@given(text=st.lists(st.sampled_from(["a", "中", "😀", HIGH, LOW, "\ud800", "\udfff"]), max_size=12).map("".join))
def test_result_always_encodes(text: str) -> None:
    """Whatever the halves, the result encodes as UTF-8 and keeps every valid character."""
    for partial in (False, True):
        result = well_formed(text, partial=partial)
        result.encode("utf-8")
        assert [ch for ch in result if ch != REPLACEMENT] == [
            ch for ch in text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace") if ch != REPLACEMENT
        ]


# --- LiveReply: halves split across deltas ----------------------------------------------------


@dataclass
class Shown:
    """A target that keeps the text of each message."""

    chat_id: int = 7
    messages: dict[int, str] = field(default_factory=dict)

    async def send(self, chunk: Chunk) -> int:
        chunk.text.encode("utf-8")  # a lone surrogate here would fail the Bot API request
        self.messages[len(self.messages) + 1] = chunk.text
        return len(self.messages)

    async def edit(self, message_id: int, chunk: Chunk) -> None:
        chunk.text.encode("utf-8")
        self.messages[message_id] = chunk.text

    async def delete(self, message_id: int) -> None:
        del self.messages[message_id]

    async def typing(self) -> None:
        pass


async def _finish(reply: LiveReply, clock: ManualClock) -> None:
    task = asyncio.get_running_loop().create_task(reply.finish())
    while not task.done():
        await clock.advance(0.5)
    await task


async def test_emoji_split_across_deltas_is_one_character(clock: ManualClock) -> None:
    """An emoji whose halves arrive in two deltas is shown and stored as the one emoji."""
    target = Shown()
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock)
    reply.append(f"Hi {HIGH}")
    await settle()
    assert target.messages == {1: "Hi"}  # the first half waits for its partner, unseen
    reply.append(f"{LOW} there")
    await _finish(reply, clock)
    assert target.messages == {1: "Hi 😀 there"}
    assert reply.text == "Hi 😀 there"


async def test_half_left_over_at_the_end_is_replaced(clock: ManualClock) -> None:
    """A lone half, inside the answer or at its very end, shows and is stored as U+FFFD."""
    target = Shown()
    reply = LiveReply(target, ChatPacer(clock), interval=1.0, clock=clock)
    reply.append(f"a{LOW} b{HIGH}")
    await settle()
    await _finish(reply, clock)
    assert target.messages == {1: f"a{REPLACEMENT} b{REPLACEMENT}"}
    reply.text.encode("utf-8")
