"""Pure: turn stored history plus a new question into a request the API accepts.

The API takes at most 40 messages, strictly alternating user/assistant, first and last from
the user. Stored turns are (question, answer) pairs, so alternation holds by construction;
here we only decide how many of the newest pairs fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage import Turn

Message = dict[str, Any]


def text_message(role: str, text: str) -> Message:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def fit_turns(turns: Sequence[Turn], *, max_messages: int, max_chars: int) -> list[Turn]:
    """The newest turns that fit beside one new question, in order; older pairs roll off."""
    budget_pairs = (max_messages - 1) // 2
    kept: list[Turn] = []
    chars = 0
    for turn in reversed(turns[-budget_pairs:] if budget_pairs else []):
        chars += len(turn.question) + len(turn.answer)
        if chars > max_chars:
            break
        kept.append(turn)
    kept.reverse()
    return kept


def build_messages(
    turns: Sequence[Turn], question: Sequence[dict[str, Any]], *, max_messages: int, max_chars: int
) -> list[Message]:
    """History as API messages, ending with the new question's content parts."""
    messages: list[Message] = []
    for turn in fit_turns(turns, max_messages=max_messages, max_chars=max_chars):
        if not turn.question.strip() or not turn.answer.strip():
            continue  # the API rejects empty text parts; a blank pair is dropped whole
        messages.append(text_message("user", turn.question))
        messages.append(text_message("assistant", turn.answer))
    messages.append({"role": "user", "content": list(question)})
    return messages
