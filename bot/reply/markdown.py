"""Pure: the agent's Markdown as Telegram text + entities, telegramify-markdown with our fixes around it.

Two fixes change the Markdown source before the library reads it; what they add is private-use
characters, which are taken out of the rendered text (and link URLs) again:

- Tag-like text outside code (``a<b and c>d``, ``List<String>``) is raw HTML to CommonMark, which
  the library drops. The parser (pyromark, the library's own) says where each piece of raw HTML
  is, so code is never touched; the piece is swapped for a run of one private-use character as
  long as itself (a table keeps its column widths), and put back into the rendered text: it
  shows exactly as written.
- A ``**`` run between punctuation and a letter is not "flanking", so CommonMark leaves
  ``这是**「重要」**内容`` as literal stars. Where either neighbour is CJK (the one place this pattern is
  common, and where no CommonMark example lives), an invisible marker goes between the run and the
  punctuation; the run is then flanking, as the writer meant. Inside code or a URL a marker does
  nothing and is removed like the others, so this needs no parse.

The entities the library makes are then made valid by :func:`bot.reply.entities.sanitize`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from itertools import groupby, pairwise

import pyromark
import telegramify_markdown
from telegramify_markdown.converter import STANDARD_OPTIONS  # the library's own parser options

from bot.reply.entities import Entity, sanitize

_CJK_RANGES = (
    (0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x2FF0, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF),
    (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF),
)  # Hangul Jamo, radicals, CJK symbols and punctuation, kana, ideographs, Hangul, full-width forms
_CJK = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES)

_TAG_HINT = re.compile(r"<[A-Za-z/!?]")  # no match: no raw HTML, no parse needed
_CJK_CHAR = re.compile(f"[{_CJK}]")
_BOLD_RUN = re.compile(r"(?<!\*)\*{2,}")  # two stars or more: a single one is as often a times sign
_TABLE_PIPE = re.compile(r"(?<!\|)\|(?!\|)")  # a lone pipe, not a spoiler's "||"
_PRIVATE = re.compile("[\ue000-\uf8ff]+")


def convert(markdown: str) -> tuple[str, list[Entity]]:
    """Render Markdown to (text, entities), the text's trailing whitespace trimmed."""
    if not markdown.strip():
        return "", []
    source, swaps = prepare(markdown)
    text, raw = telegramify_markdown.convert(source)
    entities = [e.to_dict() for e in raw]
    if swaps:
        text, entities = _swap_back(text, entities, swaps)
    text = text.rstrip()
    return text, sanitize(entities, _utf16_len(text))


def prepare(markdown: str) -> tuple[str, dict[str, str]]:
    """The Markdown with our fixes applied, and what each private-use character stands for."""
    swaps: dict[str, str] = {}
    free = _free_characters(markdown)
    if _TAG_HINT.search(markdown):
        markdown = _hide_html(markdown, free, swaps)
    if not _CJK_CHAR.search(markdown):
        return markdown, swaps
    runs = _BOLD_RUN.finditer(markdown)
    fixes = [at for run in runs if (at := _flank_fix(markdown, *run.span())) is not None]
    if fixes and (marker := next(free, None)) is not None:
        bounds = [0, *fixes, len(markdown)]
        markdown = marker.join(markdown[a:b] for a, b in pairwise(bounds))
        swaps[marker] = ""
    return markdown, swaps


def _free_characters(markdown: str) -> Iterator[str]:
    """Private-use characters that ``markdown`` does not hold, found only when first asked for."""
    present = set("".join(_PRIVATE.findall(markdown)))
    yield from (ch for ch in map(chr, range(0xE000, 0xF900)) if ch not in present)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _hide_html(markdown: str, free: Iterator[str], swaps: dict[str, str]) -> str:
    """Each piece of raw HTML (inline, or a line of a block) swapped for a private-use run."""
    source = markdown.encode()
    pieces, cursor = [], 0
    for payload, span in pyromark.events_with_range(markdown, options=STANDARD_OPTIONS):
        raw = payload.get("InlineHtml", payload.get("Html")) if type(payload) is dict else None
        if not isinstance(raw, str):
            continue
        start, end = span["start"], span["end"]
        while end > start and source[end - 1] in b"\r\n":
            end -= 1  # a block's line keeps its line break
        raw = raw.rstrip("\r\n")  # the parser's text, without the quote markers a range may span
        if not raw or end <= start:
            continue
        if (hidden := next(free, None)) is None:
            break  # thousands of tags: the rest are left to the library
        swaps[hidden] = raw
        pieces += [source[cursor:start], (hidden * len(raw)).encode()]
        cursor = end
    pieces.append(source[cursor:])
    return b"".join(pieces).decode()


def _flank_fix(text: str, start: int, end: int) -> int | None:
    """Where a marker lets the ``*`` run [start, end) beside CJK text close (or open) bold, if anywhere."""
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if not (_CJK_CHAR.match(before) or _CJK_CHAR.match(after)):
        return None
    if _is_punct(before) and after and not after.isspace() and not _is_punct(after):
        at = start  # "：**这": a closer after punctuation
    elif _is_punct(after) and before and not before.isspace() and not _is_punct(before):
        at = end  # "是**「": an opener before punctuation
    else:
        return None
    return None if _escaped(text, start) or _in_table_row(text, start) else at


def _escaped(text: str, at: int) -> bool:
    slashes = 0
    while at - slashes > 0 and text[at - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1


def _in_table_row(text: str, at: int) -> bool:
    """Whether the line holding ``at`` has a lone ``|``: a table row, where emphasis shows as text."""
    line_start, line_end = text.rfind("\n", 0, at) + 1, text.find("\n", at)
    return _TABLE_PIPE.search(text, line_start, len(text) if line_end < 0 else line_end) is not None


def _is_punct(ch: str) -> bool:
    """CommonMark's Unicode punctuation: general categories P and S."""
    return bool(ch) and unicodedata.category(ch)[0] in "PS"


def _swap_back(text: str, entities: list[Entity], swaps: dict[str, str]) -> tuple[str, list[Entity]]:
    """Put back what each private-use run stands for, moving the entities to match."""
    restored, moved = _restore(text, swaps)
    unmark = dict.fromkeys(ord(ch) for ch, replacement in swaps.items() if not replacement)
    last = len(moved) - 1
    shifted = []
    for entity in entities:
        start = moved[min(entity["offset"], last)]
        end = moved[min(entity["offset"] + entity["length"], last)]
        if end <= start:
            continue
        if (start, end - start) != (entity["offset"], entity["length"]):
            entity = {**entity, "offset": start, "length": end - start}
        for key in ("url", "language"):  # a marker may have landed in a link target or a fence
            if key in entity and _PRIVATE.search(entity[key]):
                entity = {**entity, key: entity[key].translate(unmark)}
        shifted.append(entity)
    return restored, shifted


def _restore(text: str, swaps: dict[str, str]) -> tuple[str, list[int]]:
    """``text`` with each private-use run put back, and the new place of each old UTF-16 position."""
    pieces: list[str] = []
    moves: list[tuple[int, int, int, int]] = []  # old start, old end, new start, new end (UTF-16)
    cursor = old = new = 0
    for match in _PRIVATE.finditer(text):
        before = _utf16_len(text[cursor : match.start()])
        old, new = old + before, new + before
        pieces.append(text[cursor : match.start()])
        for ch, group in groupby(match.group()):
            size = len(list(group))
            replacement = swaps[ch] if ch in swaps else ch * size  # else the answer's own character
            pieces.append(replacement)
            moves.append((old, old + size, new, new + _utf16_len(replacement)))
            old, new = old + size, new + _utf16_len(replacement)
        cursor = match.end()
    pieces.append(text[cursor:])
    return "".join(pieces), _position_map(moves, old + _utf16_len(text[cursor:]))


def _position_map(moves: list[tuple[int, int, int, int]], size: int) -> list[int]:
    """new[old]: each UTF-16 position of the old text (up to ``size``) in the new one."""
    new: list[int] = []
    old_at = new_at = 0
    for old_start, old_end, new_start, new_end in moves:
        new += range(new_at, new_at + old_start - old_at)
        new += (min(new_start + k, new_end) for k in range(old_end - old_start))
        old_at, new_at = old_end, new_end
    new += range(new_at, new_at + size - old_at + 1)
    return new
