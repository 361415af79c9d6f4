"""Pure: the agent's Markdown into Telegram messages (text + entities), split to fit.

Rendering goes through telegramify-markdown (with our fixes around it, :mod:`bot.reply.markdown`),
which yields plain text plus entities with UTF-16 offsets, valid by the Bot API's rules, so
half-written Markdown can never make Telegram reject a message. Splitting is our own: it
prefers paragraph, then line, then word boundaries, and trims the whitespace at each cut so that
Telegram (which trims message text) keeps the entity offsets we computed. Clipping entities to a
message keeps them valid: nested ones stay nested, disjoint ones disjoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import telegramify_markdown

from bot.reply.markdown import convert
from bot.reply.surrogates import well_formed

#: Telegram's limit for one message's text, in UTF-16 code units.
MAX_MESSAGE_UTF16 = 4096

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 units each


@dataclass(frozen=True, slots=True)
class Chunk:
    """One Telegram message's worth: text plus entity dicts as the Bot API takes them."""

    text: str
    entities: tuple[dict[str, Any], ...] = field(default=())
    #: An inline button under the message: (label, callback data); None for no keyboard.
    button: tuple[str, str] | None = None


def utf16_len(text: str) -> int:
    return telegramify_markdown.utf16_len(text)


def render(markdown: str, *, note: str = "", limit: int = MAX_MESSAGE_UTF16) -> list[Chunk]:
    """Render Markdown, append an italic ``note`` paragraph, and split into messages."""
    text, entities = convert(well_formed(markdown))
    note = well_formed(note).strip()
    if note:
        sep = "\n\n" if text else ""
        entities.append({"type": "italic", "offset": utf16_len(text + sep), "length": utf16_len(note)})
        text = f"{text}{sep}{note}"
    return split(text, entities, limit)


def split(text: str, entities: list[dict[str, Any]], limit: int = MAX_MESSAGE_UTF16) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``limit`` UTF-16 units, clipping entities to each."""
    if not text.strip():
        return []
    total = utf16_len(text)
    if total <= limit and text == text.strip():
        return [Chunk(text, _clip(entities, 0, total))]
    offsets = _utf16_offsets(text)
    chunks: list[Chunk] = []
    start = 0
    while True:
        start = _skip_space(text, start)
        if start >= len(text):
            return chunks
        end = _cut(text, offsets, start, limit)
        piece = text[start:end].rstrip()
        u_start, u_end = offsets[start], offsets[start + len(piece)]
        chunks.append(Chunk(piece, _clip(entities, u_start, u_end)))
        start = end


def _utf16_offsets(text: str) -> list[int]:
    """offsets[i] is the UTF-16 position of text[i]; offsets[len(text)] is the total."""
    offsets: list[int] = []
    start = shift = 0  # each astral character (two units) moves the positions after it on by one
    for astral in _ASTRAL.finditer(text):
        end = astral.start() + 1
        offsets += range(start + shift, end + shift)
        start, shift = end, shift + 1
    offsets += range(start + shift, len(text) + 1 + shift)
    return offsets


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _cut(text: str, offsets: list[int], start: int, limit: int) -> int:
    """Where the chunk starting at ``start`` should end (exclusive), preferring nice boundaries."""
    budget = offsets[start] + limit
    if offsets[len(text)] <= budget:
        return len(text)
    lo, hi = start, len(text)
    while lo < hi:  # the largest end with offsets[end] <= budget
        mid = (lo + hi + 1) // 2
        if offsets[mid] <= budget:
            lo = mid
        else:
            hi = mid - 1
    hard = max(lo, start + 1)
    floor = start + (hard - start) // 2  # never cut in the first half just to reach a boundary
    for sep in ("\n\n", "\n", " "):
        at = text.rfind(sep, floor, hard)
        if at > start:
            return at
    return hard


def _clip(entities: list[dict[str, Any]], u_start: int, u_end: int) -> tuple[dict[str, Any], ...]:
    clipped = []
    for entity in entities:
        begin = max(entity["offset"], u_start)
        end = min(entity["offset"] + entity["length"], u_end)
        if end > begin:
            clipped.append({**entity, "offset": begin - u_start, "length": end - begin})
    return tuple(clipped)
