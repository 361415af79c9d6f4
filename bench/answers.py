"""Deterministic plain-text answers (no Markdown, so rendered text == source) and their deltas."""

from __future__ import annotations

import random

_WORDS = (
    "agent", "answer", "bridge", "chat", "cloud", "delta", "edit", "forest", "garden", "harbor",
    "island", "kettle", "lantern", "meadow", "number", "orbit", "pattern", "quiet", "river",
    "signal", "token", "umbrella", "valley", "window", "yellow", "stream", "message", "paced",
    "steady", "morning", "letter", "careful", "simple", "bright", "little", "common", "measure",
)


def squash(text: str) -> str:
    """Text without any whitespace: how answers are compared (splitting trims at the cuts)."""
    return "".join(text.split())


def head(marker: str) -> str:
    """The first sentence of every answer; unique per turn thanks to the full stop."""
    return f"Answer for {marker}."


def answer_text(marker: str, length: int, *, seed: int, paragraph: int = 600) -> str:
    """About ``length`` characters of sentences, in paragraphs of about ``paragraph`` characters."""
    rng = random.Random(seed)
    parts = [head(marker)]
    size = since_break = len(parts[0])
    while size < length:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        sentence = " ".join(words).capitalize() + "."
        sep = " "
        if since_break >= paragraph:
            sep, since_break = "\n\n", 0
        parts.append(sep + sentence)
        size += len(sep) + len(sentence)
        since_break += len(sep) + len(sentence)
    text = "".join(parts)
    if len(text) > length:
        text = text[: max(length - 1, len(parts[0]))].rstrip(" .\n") + "."
    return text


def deltas(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` pieces of (nearly) equal size."""
    count = max(1, min(count, len(text)))
    return [text[i * len(text) // count : (i + 1) * len(text) // count] for i in range(count)]
