"""Pure: a message's entities made valid by the Bot API's rules, losing as little as possible.

The rules, from the Bot API's "Formatting options" (core.telegram.org/bots/api#formatting-options):

- "If two entities have common characters, then one of them is fully contained inside another."
- "bold, italic, underline, strikethrough, and spoiler entities can contain and can be part of
  any other entities, except pre and code."
- "blockquote and expandable_blockquote entities can't be nested."
- "All other entities can't contain each other."

TDLib's ``formattedText`` states the blockquote rule exactly: "BlockQuote entities can't contain
other BlockQuote entities", so a quote may hold code, pre and links; "Pre, Code and PreCode
entities can't contain other entities." We also keep only ``text_link`` URLs that are absolute
http(s) or tg:// and ``pre`` languages that are one plain word.

Repairs: a style (bold ...) is cut around code and at the edges of an entity it half-overlaps; of
two other entities that may not nest, the inner one goes (a link keeps its URL, its code look is
lost); a bad link or custom emoji becomes plain text. The text itself never changes.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

Entity = dict[str, Any]

STYLES = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
QUOTES = frozenset({"blockquote", "expandable_blockquote"})
CODE = frozenset({"code", "pre"})

#: Which of two entities over the same characters is the outer one.
_RANK = {"blockquote": 0, "expandable_blockquote": 0, "pre": 1, "text_link": 2, "code": 3}

_LANGUAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+#.-]{0,31}")


def may_contain(outer: str, inner: str) -> bool:
    """Whether an ``outer`` entity may hold an ``inner`` one, by the rules above."""
    if outer in CODE or (inner in CODE and outer not in QUOTES):
        return False
    if outer in STYLES or inner in STYLES:
        return True
    return outer in QUOTES and inner not in QUOTES


def valid_url(url: str) -> bool:
    """An absolute http(s) URL with a host, or a tg:// link: what a text_link may carry."""
    if not url or not url.isprintable() or " " in url:  # no spaces or control characters
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(parts.hostname)
    return scheme == "tg" and bool(parts.netloc)


def plain_language(info: str) -> str | None:
    """The first word of a code fence's info string when it is a plain word, else None."""
    words = info.split(maxsplit=1)
    return words[0] if words and _LANGUAGE.fullmatch(words[0]) else None


def sanitize(entities: Iterable[Entity], size: int) -> list[Entity]:
    """Valid entities for a text of ``size`` UTF-16 units, sorted outer-first."""
    rigid: list[Entity] = []
    styles: list[Entity] = []
    for entity in entities:
        cleaned = _clean(entity, size)
        if cleaned is not None:
            (styles if cleaned["type"] in STYLES else rigid).append(cleaned)
    rigid = _nest_rigid(rigid)
    styles = _nest_styles(_carve(styles, rigid))
    return sorted(rigid + styles, key=_order)


def _order(entity: Entity) -> tuple[int, int, int]:
    return (entity["offset"], -entity["length"], _RANK.get(entity["type"], 4))


def _span(entity: Entity, start: int, end: int) -> Entity:
    return {**entity, "offset": start, "length": end - start}


def _clean(entity: Entity, size: int) -> Entity | None:
    """The entity clipped to the text, or None when nothing valid is left of it."""
    start, end = max(entity["offset"], 0), min(entity["offset"] + entity["length"], size)
    kind = entity["type"]
    if end <= start or kind == "custom_emoji":  # our bot's emoji ids are not the agent's to know
        return None
    if kind == "text_link" and not valid_url(entity.get("url", "")):
        return None
    if kind == "pre" and "language" in entity:
        language = plain_language(entity["language"] or "")
        entity = {k: v for k, v in entity.items() if k != "language"}
        if language is not None:
            entity["language"] = language
    if start == entity["offset"] and end == entity["offset"] + entity["length"]:
        return entity
    return _span(entity, start, end)


def _nest_rigid(rigid: list[Entity]) -> list[Entity]:
    """Drop each non-style entity that half-overlaps, or may not sit inside, one kept before it."""
    kept: list[Entity] = []
    stack: list[Entity] = []
    for entity in sorted(rigid, key=_order):
        start, end = entity["offset"], entity["offset"] + entity["length"]
        while stack and stack[-1]["offset"] + stack[-1]["length"] <= start:
            stack.pop()
        if stack and end > stack[-1]["offset"] + stack[-1]["length"]:
            continue
        kind = entity["type"]
        if all(may_contain(outer["type"], kind) for outer in stack):
            stack.append(entity)
            kept.append(entity)
    return kept


def _carve(styles: list[Entity], rigid: list[Entity]) -> list[Entity]:
    """Styles with code cut out, then split at the edges of entities they half-overlap."""
    code = sorted((e["offset"], e["offset"] + e["length"]) for e in rigid if e["type"] in CODE)
    code_starts = [start for start, _ in code]
    code_ends = [end for _, end in code]  # sorted too: the ranges are disjoint
    edges: list[tuple[int, int, int]] = []  # (edge, other edge, +1 start / -1 end)
    for e in rigid:
        if e["type"] not in CODE:
            start, end = e["offset"], e["offset"] + e["length"]
            edges += [(start, end, 1), (end, start, -1)]
    edges.sort()
    pieces: list[Entity] = []
    for style in styles:
        start, end = style["offset"], style["offset"] + style["length"]
        first_code = bisect_right(code_ends, start)  # the first code range ending after start
        if first_code == len(code) or code_starts[first_code] >= end:
            parts = [(start, end)]  # the usual case: no code inside
        else:  # a part may now end inside a quote or link that holds the code: cut below
            parts = _minus(start, end, code, code_starts)
        for a, b in parts:
            inside = edges[bisect_right(edges, (a, 1 << 62)) : bisect_left(edges, (b,))]
            cuts = [edge for edge, other, sign in inside if (other > b if sign > 0 else other < a)]
            if not cuts and (a, b) == (start, end):
                pieces.append(style)
                continue
            pieces += [_span(style, x, y) for x, y in pairwise(sorted({a, b, *cuts}))]
    return pieces


def _minus(start: int, end: int, code: list[tuple[int, int]], starts: list[int]) -> list[tuple[int, int]]:
    """[start, end) less the (disjoint, sorted) code ranges."""
    parts = []
    i = max(bisect_right(starts, start) - 1, 0)
    cursor = start
    while i < len(code) and code[i][0] < end:
        c_start, c_end = code[i]
        if c_end > cursor:
            if c_start > cursor:
                parts.append((cursor, c_start))
            cursor = max(cursor, c_end)
        i += 1
    if cursor < end:
        parts.append((cursor, end))
    return parts


def _nest_styles(styles: list[Entity]) -> list[Entity]:
    """Styles split where they half-overlap each other, so that every pair nests."""
    heap = [(e["offset"], -(e["offset"] + e["length"]), i, e) for i, e in enumerate(styles)]
    heapq.heapify(heap)
    serial = len(heap)
    open_ends: list[int] = []  # ends of the styles around the current position, innermost last
    nested: list[Entity] = []
    while heap:
        start, neg_end, _, entity = heapq.heappop(heap)
        end = -neg_end
        while open_ends and open_ends[-1] <= start:
            open_ends.pop()
        if open_ends and end > open_ends[-1]:
            heapq.heappush(heap, (open_ends[-1], neg_end, serial, entity))
            serial += 1
            end = open_ends[-1]
        open_ends.append(end)
        unchanged = start == entity["offset"] and end == start + entity["length"]
        nested.append(entity if unchanged else _span(entity, start, end))
    return nested
