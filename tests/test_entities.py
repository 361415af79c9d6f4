"""sanitize(): a message's entities made valid by the Bot API's rules, losing as little as possible."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reply.entities import may_contain, plain_language, sanitize, valid_url
from tests.entity_rules import violations


def e(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": length, **extra}


def spans(entities: list[dict[str, Any]]) -> set[tuple[str, int, int]]:
    return {(x["type"], x["offset"], x["offset"] + x["length"]) for x in entities}


@pytest.mark.parametrize(
    ("outer", "inner", "allowed"),
    [
        ("bold", "italic", True),
        ("spoiler", "text_link", True),
        ("text_link", "strikethrough", True),
        ("blockquote", "bold", True),
        ("blockquote", "pre", True),
        ("expandable_blockquote", "code", True),
        ("blockquote", "text_link", True),
        ("bold", "blockquote", True),
        ("bold", "code", False),
        ("code", "bold", False),
        ("pre", "text_link", False),
        ("text_link", "code", False),
        ("text_link", "text_link", False),
        ("blockquote", "blockquote", False),
        ("blockquote", "expandable_blockquote", False),
    ],
)
def test_may_contain(outer: str, inner: str, allowed: bool) -> None:
    """Styles nest with anything but code; quotes hold anything but quotes; the rest hold nothing."""
    assert may_contain(outer, inner) is allowed


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/a?b=1#c", True),
        ("http://example.com", True),
        ("HTTPS://EXAMPLE.COM", True),
        ("tg://user?id=123", True),
        ("/relative/path", False),
        ("#anchor", False),
        ("javascript:alert(1)", False),
        ("mailto:a@b.c", False),
        ("https://", False),
        ("https:example.com", False),
        ("http://a b.com", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_valid_url(url: str, ok: bool) -> None:
    """Only absolute http(s) URLs with a host, and tg:// links, may be a text_link's target."""
    assert valid_url(url) is ok


@pytest.mark.parametrize(
    ("info", "language"),
    [
        ("python", "python"),
        ('python title="app.py"', "python"),
        ("c++", "c++"),
        ("objective-c", "objective-c"),
        ("{.python}", None),
        ('title="x" python', None),
        ("", None),
        ("日本語", None),
    ],
)
def test_plain_language(info: str, language: str | None) -> None:
    """A fence's language is its info string's first word, when that is a plain word."""
    assert plain_language(info) == language


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        pytest.param(
            [e("italic", 0, 3), e("spoiler", 2, 3)],
            [e("italic", 0, 3), e("spoiler", 2, 1), e("spoiler", 3, 2)],
            id="half-overlapping-styles-split",
        ),
        pytest.param(
            [e("bold", 0, 9), e("code", 4, 3)],
            [e("bold", 0, 4), e("code", 4, 3), e("bold", 7, 2)],
            id="style-cut-around-code",
        ),
        pytest.param(
            [e("code", 0, 1), e("text_link", 0, 1, url="https://a.com")],
            [e("text_link", 0, 1, url="https://a.com")],
            id="code-in-link-loses-its-look",
        ),
        pytest.param(
            [e("text_link", 0, 1, url="https://i.png"), e("text_link", 0, 2, url="https://a.com")],
            [e("text_link", 0, 2, url="https://a.com")],
            id="link-in-link-keeps-the-outer",
        ),
        pytest.param(
            [e("blockquote", 2, 1), e("blockquote", 0, 3)],
            [e("blockquote", 0, 3)],
            id="nested-quote-dropped",
        ),
        pytest.param(
            [e("blockquote", 0, 9), e("pre", 2, 5, language="python")],
            [e("blockquote", 0, 9), e("pre", 2, 5, language="python")],
            id="pre-inside-quote-kept",
        ),
        pytest.param(
            [e("spoiler", 0, 6), e("blockquote", 4, 6)],
            [e("spoiler", 0, 4), e("blockquote", 4, 6), e("spoiler", 4, 2)],
            id="style-split-at-a-quote-edge",
        ),
        pytest.param(
            [e("spoiler", 0, 10), e("blockquote", 5, 5), e("code", 6, 2)],
            [e("spoiler", 0, 5), e("blockquote", 5, 5), e("spoiler", 5, 1), e("code", 6, 2), e("spoiler", 8, 2)],
            id="cut-around-code-then-at-the-quote-holding-it",
        ),
        pytest.param(
            [e("text_link", 0, 1, url="/rel"), e("custom_emoji", 2, 1, custom_emoji_id="1" * 19)],
            [],
            id="bad-link-and-custom-emoji-become-plain-text",
        ),
        pytest.param(
            [e("pre", 0, 3, language='python title="a.py"'), e("pre", 4, 3, language="{.py}")],
            [e("pre", 0, 3, language="python"), e("pre", 4, 3)],
            id="languages-made-plain",
        ),
        pytest.param(
            [e("pre", 0, 25), e("italic", 18, 5), e("bold", 30, 2)],
            [e("pre", 0, 20)],
            id="clipped-to-the-text",
        ),
    ],
)
def test_sanitize_repairs(entities: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Each kind of invalid entity list (on a 20-unit text) is repaired as the table says, and is valid."""
    result = sanitize(entities, 20)
    assert result == expected
    assert violations("x" * 20, result) == []


def test_valid_entities_come_back_unchanged() -> None:
    """A list that already follows the rules comes back as it was (sorted outer-first)."""
    entities = [
        e("blockquote", 0, 20),
        e("bold", 0, 5),
        e("italic", 1, 2),
        e("text_link", 6, 4, url="https://a.com"),
        e("code", 11, 3),
        e("pre", 15, 5, language="go"),
    ]
    assert sanitize(entities, 20) == entities


_KINDS = st.sampled_from(
    ["bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link", "blockquote",
     "expandable_blockquote", "custom_emoji"]
)


@st.composite
def _entity_lists(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]]]:
    size = draw(st.integers(1, 40))
    entities = []
    for _ in range(draw(st.integers(0, 12))):
        start = draw(st.integers(0, size + 2))
        kind = draw(_KINDS)
        extra: dict[str, Any] = {}
        if kind == "text_link":
            extra["url"] = draw(st.sampled_from(["https://a.com", "/rel", "tg://user?id=1", "javascript:x"]))
        if kind == "pre" and draw(st.booleans()):
            extra["language"] = draw(st.sampled_from(["python", 'py title="x"', "{.x}", ""]))
        entities.append(e(kind, start, draw(st.integers(1, size + 2)), **extra))
    return size, entities


@settings(max_examples=400, deadline=None)
@given(case=_entity_lists())
def test_sanitize_always_yields_valid_entities(case: tuple[int, list[dict[str, Any]]]) -> None:
    """Any list of entities, however tangled, comes out valid by the Bot API's rules."""
    size, entities = case
    assert violations("x" * size, sanitize(entities, size)) == []


@settings(max_examples=300, deadline=None)
@given(case=_entity_lists())
def test_styles_keep_every_character_outside_code(case: tuple[int, list[dict[str, Any]]]) -> None:
    """A style still covers each of its characters in the text that no code or pre covers."""
    size, entities = case
    result = sanitize(entities, size)
    code = {i for x in result if x["type"] in ("code", "pre") for i in range(x["offset"], x["offset"] + x["length"])}
    for kind in ("bold", "italic", "underline", "strikethrough", "spoiler"):
        wanted = {
            i for x in entities if x["type"] == kind for i in range(max(x["offset"], 0), min(x["offset"] + x["length"], size))
        }
        kept = {i for x in result if x["type"] == kind for i in range(x["offset"], x["offset"] + x["length"])}
        assert kept == wanted - code
