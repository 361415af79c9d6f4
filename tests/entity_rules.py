"""The Bot API's rules for a message's entities, written out on their own as the tests' oracle.

Kept apart from ``bot/reply/entities.py`` on purpose: a checker that reused the code under test
would agree with it by construction. The nesting rules are the Bot API's ("Formatting options",
core.telegram.org/bots/api#formatting-options):

1. "If two entities have common characters, then one of them is fully contained inside another."
2. "bold, italic, underline, strikethrough, and spoiler entities can contain and can be part of
   any other entities, except pre and code."
3. "blockquote and expandable_blockquote entities can't be nested."
4. "All other entities can't contain each other."

Rule 3 is read as TDLib's ``formattedText`` states it ("BlockQuote entities can't contain other
BlockQuote entities"; "Pre, Code and PreCode entities can't contain other entities"), so a quote
may hold code, pre and links.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

STYLE = {"bold", "italic", "underline", "strikethrough", "spoiler"}
QUOTE = {"blockquote", "expandable_blockquote"}
CODE = {"code", "pre"}
KNOWN = STYLE | QUOTE | CODE | {"text_link"}


def u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def may_nest(outer: str, inner: str) -> bool:
    if outer in CODE:
        return False  # TDLib: pre and code contain nothing
    if outer in STYLE or inner in STYLE:
        return inner not in CODE and outer not in CODE  # rule 2
    if outer in QUOTE:
        return inner not in QUOTE  # rule 3
    return False  # rule 4


def url_ok(url: str) -> bool:
    parts = urlsplit(url)
    if " " in url or not url.isprintable():
        return False
    if parts.scheme in ("http", "https"):
        return bool(parts.hostname)
    return parts.scheme == "tg" and bool(parts.netloc)


def violations(text: str, entities: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> list[str]:
    """Every way one message breaks the rules; empty when Telegram would take it."""
    found = []
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        found.append(f"text is not valid Unicode: {exc}")
    size = u16(text) if not found else len(text)
    for e in entities:
        if e["type"] not in KNOWN:
            found.append(f"unexpected type {e}")
        if e["offset"] < 0 or e["length"] <= 0 or e["offset"] + e["length"] > size:
            found.append(f"outside the text (size {size}): {e}")
        if e["type"] == "text_link" and not url_ok(e["url"]):
            found.append(f"bad link target {e}")
        if e["type"] == "pre" and "language" in e and not re.fullmatch(r"[A-Za-z0-9][\w+#.-]*", e["language"], re.A):
            found.append(f"language is not a plain word {e}")
    for i, a in enumerate(entities):
        a_end = a["offset"] + a["length"]
        for b in entities[i + 1 :]:
            b_end = b["offset"] + b["length"]
            if a_end <= b["offset"] or b_end <= a["offset"]:
                continue
            a_holds_b = a["offset"] <= b["offset"] and b_end <= a_end
            b_holds_a = b["offset"] <= a["offset"] and a_end <= b_end
            if not (a_holds_b or b_holds_a):
                found.append(f"partial overlap {a} / {b}")
            elif not ((a_holds_b and may_nest(a["type"], b["type"])) or (b_holds_a and may_nest(b["type"], a["type"]))):
                found.append(f"may not nest {a} / {b}")
    return found
