"""Turns, and what the fakes recorded about them: visibility times from a replay of the calls."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.answers import head, squash
from tests.fakes.telegram import MESSAGE_OPS, Call
from tests.fakes.yuanqi import Recorded

MARKER = re.compile(r"\bturn-(\d+)\b")
_SHOWN = frozenset({"sendmessage", "editmessagetext", "sendmessagedraft"})
_OPS = MESSAGE_OPS | {"sendmessagedraft"}  # what the chat shows: its messages and its draft


@dataclass
class Turn:
    """One question the bench asks, the answer the fake agent gives, and what happened."""

    index: int
    chat_id: int
    question: str
    answer: str
    chunks: list[str]
    chunk_delay: float
    chat_type: str = "private"
    user_id: int | None = None
    first_name: str = "Ann"
    photo_bytes: int = 0  # > 0: the question is the caption of a photo of this many bytes
    # filled in while running
    sent_at: float | None = None
    user_message_id: int = 0
    done_at: float | None = None  # when the bench saw the whole answer (polling; not a figure)
    # filled in by analyse()
    requests: int = 0
    agent_at: float | None = None  # the agent request that answered
    first_delta_at: float | None = None
    last_byte_at: float | None = None
    first_visible_at: float | None = None
    first_allowed_at: float | None = None  # max(first delta, the chat's next slot by its interval)
    final_visible_at: float | None = None
    key: str = field(init=False, repr=False)
    head_key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = squash(self.answer)
        self.head_key = squash(head(self.marker))

    @property
    def marker(self) -> str:
        return f"turn-{self.index}"

    @property
    def completed(self) -> bool:
        return self.final_visible_at is not None

    def figures(self) -> dict[str, float | None]:
        def diff(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((a - b) * 1000, 1)
        return {
            "first_ms": diff(self.first_visible_at, self.first_delta_at),
            "first_budget_ms": diff(self.first_visible_at, self.first_allowed_at),
            "final_ms": diff(self.final_visible_at, self.last_byte_at),
            "user_to_first_ms": diff(self.first_visible_at, self.sent_at),
            "user_to_final_ms": diff(self.final_visible_at, self.sent_at),
            "agent_wait_ms": diff(self.agent_at, self.sent_at),
        }


def answer_messages(messages: Iterable[tuple[int, str]], turn: Turn) -> list[int] | None:
    """The ids of the chat's bot messages (id order) that show exactly the turn's whole answer."""
    acc, ids = "", []
    for message_id, text in messages:
        if message_id <= turn.user_message_id:
            continue
        piece = squash(text)
        if not acc and not piece.startswith(turn.head_key):
            continue
        acc += piece
        ids.append(message_id)
        if len(acc) >= len(turn.key):
            return ids if acc == turn.key else None
    return None


def holds_answer(messages: Iterable[tuple[int, str]], turn: Turn) -> bool:
    return answer_messages(messages, turn) is not None


def answer_copies(shown: dict[int, list[tuple[int, str]]], turns: Sequence[Turn]) -> dict[str, int]:
    """How many bot messages begin each turn's answer (its unique first sentence) after the
    question: 1 is right, 0 lost, 2 or more a duplicated answer (a turn answered twice)."""
    return {turn.marker: sum(message_id > turn.user_message_id
                             and squash(text).startswith(turn.head_key)
                             for message_id, text in shown.get(turn.chat_id, []))
            for turn in turns}


def stray_messages(shown: dict[int, list[tuple[int, str]]], turns: Sequence[Turn]) -> int:
    """Bot messages left in the turns' chats that are no part of any answer (notices, leftovers)."""
    per_chat: dict[int, list[Turn]] = defaultdict(list)
    for turn in turns:
        per_chat[turn.chat_id].append(turn)
    stray = 0
    for chat, chat_turns in per_chat.items():
        messages = shown.get(chat, [])
        used: set[int] = set()
        for turn in chat_turns:
            used.update(answer_messages(messages, turn) or ())
        stray += sum(message_id not in used for message_id, _ in messages)
    return stray


def match_requests(turns: Sequence[Turn], requests: Sequence[Recorded]) -> None:
    """Attach each turn's agent timings (the last request for it that streamed text)."""
    by_index = {t.index: t for t in turns}
    for rec in requests:
        found = MARKER.search(rec.last_user_text)
        turn = by_index.get(int(found.group(1))) if found else None
        if turn is None:
            continue
        turn.requests += 1
        if rec.first_text_at is not None or turn.first_delta_at is None:
            turn.agent_at, turn.first_delta_at = rec.at, rec.first_text_at
            turn.last_byte_at = rec.last_byte_at


def _chat_of(call: Call) -> int | None:
    value = call.params.get("chat_id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def replay(
    calls: Sequence[Call], turns: Sequence[Turn], interval_of: Any, hold_of: Any = lambda chat: 0
) -> None:
    """Replay the successful message operations per chat and time each turn's visibility.

    first visible: the first successful send, edit or draft update (a native draft shows its
    text too), after the agent's first delta, whose text is part of the answer. final visible:
    the successful call after which the chat's bot messages hold exactly the whole answer (a
    draft is no message: its final text counts once sent). ``interval_of(chat_id)`` is the
    bot's pacing interval for the first text, used for the time the chat's rate budget first
    allowed an operation after the first delta; ``hold_of(chat_id)`` the characters an answer
    is held back for (GROUP_HOLD_CHARS in groups): nothing may show before the agent sent them.
    """
    per_chat: dict[int, list[Turn]] = defaultdict(list)
    for turn in turns:
        if turn.sent_at is not None:
            per_chat[turn.chat_id].append(turn)
    ops: dict[int, list[Call]] = defaultdict(list)
    for call in calls:
        chat = _chat_of(call)
        if chat in per_chat and call.status == 200 and call.method.lower() in _OPS:
            ops[chat].append(call)
    for chat, chat_turns in per_chat.items():
        _replay_chat(ops.get(chat, []), chat_turns, interval_of(chat), hold_of(chat))


def held_until(turn: Turn, hold: int) -> float | None:
    """When the agent had sent ``hold`` characters of the answer (all of it, if shorter): before
    that a held-back answer may not show. None while the turn's deltas are not timed."""
    if turn.first_delta_at is None:
        return None
    sent = 0
    for index, chunk in enumerate(turn.chunks):
        sent += len(chunk)
        if sent >= hold:
            return turn.first_delta_at + index * turn.chunk_delay
    return turn.last_byte_at


def _replay_chat(calls: list[Call], turns: list[Turn], interval: float, hold: int = 0) -> None:
    texts: dict[int, str] = {}
    last_op: float | None = None
    waiting_first = list(turns)
    waiting_final = list(turns)
    for call in calls:
        method = call.method.lower()
        message_id, text = _effect(call)
        if message_id is not None:
            if text is None:
                texts.pop(message_id, None)
            else:
                texts[message_id] = text
        if method == "sendmessagedraft":  # shown while streaming, but no message of the chat
            text = str(call.params.get("text") or "")
        if method in _SHOWN and text:
            piece = squash(text)
            for turn in waiting_first:
                if turn.first_delta_at is not None and call.at >= turn.first_delta_at and (
                    piece and piece in turn.key
                ):
                    turn.first_visible_at = call.at
                    slot = -math.inf if last_op is None else last_op + interval
                    turn.first_allowed_at = max(turn.first_delta_at, slot,
                                                held_until(turn, hold) or -math.inf)
                    waiting_first.remove(turn)
                    break
        if waiting_final:
            ordered = sorted(texts.items())
            for turn in list(waiting_final):
                if turn.sent_at is not None and call.at >= turn.sent_at and holds_answer(ordered, turn):
                    turn.final_visible_at = call.at
                    waiting_final.remove(turn)
        if method in MESSAGE_OPS:  # drafts spend no message budget
            last_op = call.at


def _effect(call: Call) -> tuple[int | None, str | None]:
    """(message id, its new text, or None when deleted) for a successful message operation."""
    method = call.method.lower()
    if method == "sendmessage" and isinstance(call.result, dict):
        return call.result.get("message_id"), str(call.params.get("text") or "")
    if method == "editmessagetext":
        return _as_int(call.params.get("message_id")), str(call.params.get("text") or "")
    if method == "deletemessage":
        return _as_int(call.params.get("message_id")), None
    return None, None


def _as_int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def percentiles(values: Iterable[float | None]) -> dict[str, float | None]:
    """p50 / p99 / max by nearest rank, and how many values there were."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"n": 0, "p50": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return xs[max(0, math.ceil(p * len(xs)) - 1)]
    return {"n": len(xs), "p50": rank(0.50), "p99": rank(0.99), "max": xs[-1]}


def check_history(turns: Sequence[Turn], requests: Sequence[Recorded], *, max_messages: int,
                  max_chars: int) -> dict[str, Any]:
    """Did every request carry exactly the newest earlier turns that fit (full and rolling)?"""
    by_index = {t.index: t for t in turns}
    ordered = sorted(turns, key=lambda t: t.index)
    position = {t.index: i for i, t in enumerate(ordered)}
    mismatches, pairs_sent = 0, []
    for rec in requests:
        found = MARKER.search(rec.last_user_text)
        turn = by_index.get(int(found.group(1))) if found else None
        if turn is None or rec.first_text_at is None:
            continue
        earlier = [t for t in ordered[: position[turn.index]] if t.completed]
        expected = _fitting(earlier, max_messages=max_messages, max_chars=max_chars)
        sent = rec.messages[:-1]
        got = [(_text(sent[i]), _text(sent[i + 1])) for i in range(0, len(sent) - 1, 2)]
        want = [(t.question, t.answer) for t in expected]
        pairs_sent.append(len(got))
        if [(q, squash(a)) for q, a in got] != [(q, squash(a)) for q, a in want]:
            mismatches += 1
    return {"requests_checked": len(pairs_sent), "mismatches": mismatches,
            "pairs_sent": percentiles(pairs_sent), "max_pairs_sent": max(pairs_sent, default=0)}


def _fitting(turns: Sequence[Turn], *, max_messages: int, max_chars: int) -> list[Turn]:
    budget = (max_messages - 1) // 2
    kept: list[Turn] = []
    chars = 0
    for turn in reversed(turns[-budget:] if budget else []):
        chars += len(turn.question) + len(turn.answer)
        if chars > max_chars:
            break
        kept.append(turn)
    return kept[::-1]


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return ""
    return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
