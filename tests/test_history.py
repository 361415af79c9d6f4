"""build_messages(): stored turns plus a new question as a request the Yuanqi API accepts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.history import build_messages
from storage import Turn
from tests.fakes.yuanqi import ASSISTANT_ID, YUANQI_TOKEN, validate

QUESTION = [{"type": "text", "text": "What now?"}]
UNLIMITED = 10**9


def turn(i: int, question: str | None = None, answer: str | None = None) -> Turn:
    q = f"q{i}" if question is None else question
    a = f"a{i}" if answer is None else answer
    return Turn(question=q, answer=a, at=float(i))


def pairs(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The history part of a request as (question, answer) texts, oldest first."""
    history = messages[:-1]
    texts = [m["content"][0]["text"] for m in history]
    return list(zip(texts[0::2], texts[1::2], strict=True))


def api_problems(messages: list[dict[str, Any]]) -> list[str]:
    """What the fake API (which follows the documented rules) would reject in these messages."""
    headers = {"authorization": f"Bearer {YUANQI_TOKEN}", "x-source": "openapi"}
    body = {"assistant_id": ASSISTANT_ID, "user_id": "u", "messages": messages}
    return validate(headers, body, YUANQI_TOKEN, ASSISTANT_ID)


_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "\n", "你好", "😀"]))
_TURNS = st.lists(st.builds(Turn, question=_TEXT, answer=_TEXT, at=st.floats(0, 1e9)), max_size=30)


@given(
    turns=_TURNS,
    max_messages=st.sampled_from([1, 2, 3, 5, 40]),
    max_chars=st.one_of(st.integers(0, 200), st.just(UNLIMITED)),
)
def test_request_shape_always_valid(turns: list[Turn], max_messages: int, max_chars: int) -> None:
    """Whatever the history, the request alternates user/assistant, starts and ends with user, and fits."""
    messages = build_messages(turns, QUESTION, max_messages=max_messages, max_chars=max_chars)
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"]
    assert len(messages) <= max_messages
    assert api_problems(messages) == []


@given(
    turns=_TURNS,
    max_messages=st.sampled_from([1, 2, 3, 5, 40]),
    max_chars=st.one_of(st.integers(0, 200), st.just(UNLIMITED)),
)
def test_history_is_the_newest_usable_turns(turns: list[Turn], max_messages: int, max_chars: int) -> None:
    """What is sent is the non-blank turns of some newest run of history, in order, within max_chars."""
    messages = build_messages(turns, QUESTION, max_messages=max_messages, max_chars=max_chars)
    sent = pairs(messages)
    usable = [(t.question, t.answer) for t in turns if t.question.strip() and t.answer.strip()]
    assert sent == usable[len(usable) - len(sent) :]
    assert sum(len(q) + len(a) for q, a in sent) <= max_chars


@pytest.mark.parametrize("max_messages", [1, 2, 3, 5, 40], ids=lambda n: f"max{n}")
@pytest.mark.parametrize("history", [0, 1, 2, 19, 20, 30], ids=lambda n: f"{n}turns")
def test_keeps_as_many_newest_turns_as_fit(max_messages: int, history: int) -> None:
    """Without a character limit the newest (max_messages - 1) // 2 turns are kept, oldest rolling off."""
    turns = [turn(i) for i in range(history)]
    messages = build_messages(turns, QUESTION, max_messages=max_messages, max_chars=UNLIMITED)
    kept = min(history, (max_messages - 1) // 2)
    assert pairs(messages) == [(f"q{i}", f"a{i}") for i in range(history - kept, history)]


@pytest.mark.parametrize(
    ("max_chars", "kept"),
    [
        pytest.param(40, [1, 2, 3, 4], id="all-fit"),
        pytest.param(30, [2, 3, 4], id="exact-fit-keeps-three"),
        pytest.param(29, [3, 4], id="one-short-drops-a-pair"),
        pytest.param(9, [], id="newest-alone-too-big"),
        pytest.param(0, [], id="zero"),
    ],
)
def test_character_budget_drops_whole_pairs_oldest_first(max_chars: int, kept: list[int]) -> None:
    """Past max_chars the oldest pairs go entirely; a question is never sent without its answer."""
    turns = [turn(i, "q" * 5, f"a{i}" * 2 + "a") for i in range(1, 5)]  # 5 + 5 = 10 chars each
    messages = build_messages(turns, QUESTION, max_messages=40, max_chars=max_chars)
    assert pairs(messages) == [("q" * 5, f"a{i}" * 2 + "a") for i in kept]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        pytest.param("", "an answer", id="empty-question"),
        pytest.param("a question", "", id="empty-answer"),
        pytest.param("  \n", "an answer", id="whitespace-question"),
        pytest.param("a question", "\t ", id="whitespace-answer"),
    ],
)
def test_turn_with_blank_side_is_dropped_whole(question: str, answer: str) -> None:
    """A turn whose question or answer is blank is left out together with its other half."""
    turns = [turn(1), turn(2, question, answer), turn(3)]
    messages = build_messages(turns, QUESTION, max_messages=40, max_chars=UNLIMITED)
    assert pairs(messages) == [("q1", "a1"), ("q3", "a3")]
    assert api_problems(messages) == []


@pytest.mark.parametrize(
    "question",
    [
        pytest.param([{"type": "text", "text": "hi"}], id="text"),
        pytest.param(
            [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
            id="text-and-image",
        ),
        pytest.param(
            [{"type": "file_url", "file_url": {"type": "image", "url": "http://127.0.0.1/x.png"}}],
            id="file-only",
        ),
    ],
)
def test_last_message_holds_the_question_parts_unchanged(question: list[dict[str, Any]]) -> None:
    """The final user message carries exactly the given content parts; the caller's list is untouched."""
    before = copy.deepcopy(question)
    messages = build_messages([turn(1)], question, max_messages=40, max_chars=UNLIMITED)
    assert messages[-1] == {"role": "user", "content": before}
    assert question == before
