"""Pure: turn stored history plus a new question into a request the API accepts.

The API takes at most 40 messages, strictly alternating user/assistant, first and last from
the user. Stored turns are (question, answer) pairs, so alternation holds by construction;
here we only decide how many of the newest pairs fit, and how earlier pictures come along.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from storage import Turn

Message = dict[str, Any]
Part = dict[str, Any]
IMAGE_NOTE = "[image]"


def text_part(text: str) -> Part:
    return {"type": "text", "text": text}


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
    turns: Sequence[Turn], question: Sequence[Part], *, max_messages: int, max_chars: int,
    image_parts: Callable[[Sequence[str]], list[Part]] = lambda ids: [], max_images: int = 0,
) -> list[Message]:
    """History as API messages, ending with the new question's content parts.

    Earlier pictures are re-sent through ``image_parts`` (newest first, at most ``max_images``);
    the others leave an "[image]" note so the agent knows one was there.
    """
    kept = [t for t in fit_turns(turns, max_messages=max_messages, max_chars=max_chars)
            if t.answer.strip() and (t.question.strip() or t.images)]
    budget = max_images
    messages: list[Message] = []
    for turn in reversed(kept):
        pictures = image_parts(turn.images) if turn.images and budget >= len(turn.images) else []
        budget -= len(pictures)
        text = turn.question
        if turn.images and not pictures:
            text = f"{IMAGE_NOTE} {text}".strip()
        content = ([text_part(text)] if text.strip() else []) + pictures
        messages.append({"role": "assistant", "content": [text_part(turn.answer)]})
        messages.append({"role": "user", "content": content})
    messages.reverse()
    messages.append({"role": "user", "content": list(question)})
    return messages
