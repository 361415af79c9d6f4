"""render() and split(): Markdown into Telegram text + UTF-16 entities, cut to fit a message."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reply.render import MAX_MESSAGE_UTF16, Chunk, render, split


def u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def covered(text: str, entity: dict[str, Any]) -> str:
    """The part of ``text`` an entity covers, read the way Telegram does (UTF-16 units)."""
    raw = text.encode("utf-16-le")
    start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
    return raw[start:end].decode("utf-16-le")


def assert_entities_inside(chunks: list[Chunk]) -> None:
    for chunk in chunks:
        for entity in chunk.entities:
            assert entity["length"] > 0, (chunk, entity)
            assert entity["offset"] >= 0, (chunk, entity)
            assert entity["offset"] + entity["length"] <= u16(chunk.text), (chunk, entity)


# --- render ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "text", "kind", "covers", "extra"),
    [
        pytest.param("Say **bold** now", "Say bold now", "bold", "bold", {}, id="bold"),
        pytest.param("Run `ls -la` here", "Run ls -la here", "code", "ls -la", {}, id="inline-code"),
        pytest.param(
            "See [the docs](https://example.com/a) please",
            "See the docs please",
            "text_link",
            "the docs",
            {"url": "https://example.com/a"},
            id="link",
        ),
        pytest.param(
            "Code:\n\n```python\nprint(1)\n```",
            "Code:\n\nprint(1)",
            "pre",
            "print(1)",
            {"language": "python"},
            id="fenced-code",
        ),
    ],
)
def test_markdown_becomes_entities(
    markdown: str, text: str, kind: str, covers: str, extra: dict[str, str]
) -> None:
    """Markdown markup is removed from the text and becomes one entity over exactly the marked words."""
    [chunk] = render(markdown)
    assert chunk.text == text
    [entity] = chunk.entities
    assert entity["type"] == kind
    assert covered(chunk.text, entity) == covers
    assert {k: entity[k] for k in extra} == extra


@pytest.mark.parametrize(
    ("prefix", "offset"),
    [
        pytest.param("a", 2, id="ascii"),
        pytest.param("中", 2, id="cjk-is-one-unit"),
        pytest.param("😀", 3, id="emoji-is-two-units"),
        pytest.param("😀😀", 5, id="two-emoji"),
    ],
)
def test_entity_offsets_count_utf16_units(prefix: str, offset: int) -> None:
    """An astral character (emoji) before a bold word shifts its offset by 2, a BMP character by 1."""
    [chunk] = render(f"{prefix} **bold**")
    [entity] = chunk.entities
    assert (entity["type"], entity["offset"], entity["length"]) == ("bold", offset, 4)
    assert covered(chunk.text, entity) == "bold"


@pytest.mark.parametrize(
    "markdown",
    [
        pytest.param("**bold te", id="unclosed-bold"),
        pytest.param("Some `code", id="unclosed-backtick"),
        pytest.param("[link text](https://exa", id="unclosed-link"),
        pytest.param("```py\nx = 1\n", id="unclosed-fence"),
        pytest.param("Intro\n\n```\nfor x in y:\n    pass\n\n", id="unclosed-fence-blank-line"),
        pytest.param("```\ncode   ", id="unclosed-fence-trailing-spaces"),
        pytest.param("`a `", id="code-ending-in-space"),
        pytest.param("*", id="lone-star"),
        pytest.param("```", id="bare-fence"),
    ],
)
def test_half_written_markdown_never_yields_entities_outside_the_text(markdown: str) -> None:
    """Markdown cut off mid-stream renders to entities that all lie inside their message's text."""
    chunks = render(markdown)
    assert all(c.text and c.text == c.text.strip() for c in chunks)
    assert_entities_inside(chunks)


_DOCUMENT = (
    "# Title 😀\n\nSome **bold words** and `inline code`, plus a [link](https://example.com).\n\n"
    "- first item\n- second *item*\n\n> a quote\n\n```python\ndef f(x):\n\n    return x\n```\n\n"
    "中文 **粗体** 结束。"
)


def test_every_prefix_of_a_streamed_answer_renders_inside_bounds() -> None:
    """Each intermediate state of a streamed answer (every prefix) renders to in-bounds entities."""
    for end in range(1, len(_DOCUMENT) + 1):
        chunks = render(_DOCUMENT[:end])
        try:
            assert_entities_inside(chunks)
        except AssertionError as exc:
            raise AssertionError(f"prefix {_DOCUMENT[:end]!r}: {exc}") from None


@pytest.mark.parametrize(
    ("markdown", "note", "text"),
    [
        pytest.param("Hello **world**", "(cut short)", "Hello world\n\n(cut short)", id="after-answer"),
        pytest.param("Hi\n\n\n  ", "note", "Hi\n\nnote", id="trailing-blank-lines-trimmed"),
        pytest.param("", "only a note", "only a note", id="empty-answer"),
        pytest.param("😀 x", "⚠️ 注意", "😀 x\n\n⚠️ 注意", id="astral-before-and-inside"),
    ],
)
def test_note_is_an_italic_paragraph_of_its_own(markdown: str, note: str, text: str) -> None:
    """The note follows the answer after one blank line, with an italic entity over exactly the note."""
    [chunk] = render(markdown, note=note)
    assert chunk.text == text
    italics = [e for e in chunk.entities if e["type"] == "italic"]
    assert len(italics) == 1
    assert covered(chunk.text, italics[0]) == note
    assert italics[0]["offset"] + italics[0]["length"] == u16(chunk.text)


def test_answer_entities_stay_put_when_a_note_is_added() -> None:
    """Adding a note leaves the answer's own entities exactly where they were."""
    [plain] = render("Some **bold** text")
    [noted] = render("Some **bold** text", note="done")
    assert [e for e in noted.entities if e["type"] != "italic"] == list(plain.entities)


def test_blank_answer_without_note_renders_nothing() -> None:
    """Whitespace-only Markdown gives no message at all rather than an empty one."""
    assert render("  \n\n ") == []


def test_long_answer_renders_to_several_chunks() -> None:
    """An answer over 4096 UTF-16 units becomes several messages that each fit and keep their bold words."""
    markdown = "\n\n".join(f"Paragraph {i} has a **bold** word in it." for i in range(300))
    chunks = render(markdown)
    assert len(chunks) > 1
    assert all(u16(c.text) <= MAX_MESSAGE_UTF16 for c in chunks)
    assert_entities_inside(chunks)
    bold = [covered(c.text, e) for c in chunks for e in c.entities]
    assert bold == ["bold"] * 300


# --- split: examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first"),
    [
        pytest.param("aaaaaaaaaaaa\n\nb\nc d eeeeeeeeeeeeeeee", "aaaaaaaaaaaa", id="paragraph-over-line"),
        pytest.param("aaaaaaaaaaaa\nbb cc dddddddddddddd", "aaaaaaaaaaaa", id="line-over-space"),
        pytest.param("aaaaaaaaaaaa bb cc dddddddddd", "aaaaaaaaaaaa bb cc", id="last-space"),
        pytest.param(
            "aaa\n\nbbbbbbbbbbb cccccccccccc", "aaa\n\nbbbbbbbbbbb", id="paragraph-in-first-half-ignored"
        ),
        pytest.param("aaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "aaaa bbbbbbbbbbbbbbb", id="hard-cut"),
    ],
)
def test_cut_prefers_paragraph_then_line_then_space(text: str, first: str) -> None:
    """Within the second half of a 20-unit window the cut goes to a paragraph, else a line, else a space."""
    chunks = split(text, [], limit=20)
    assert chunks[0].text == first


def test_entity_spanning_a_cut_is_clipped_into_both_chunks() -> None:
    """A bold run crossing the cut appears in both messages, each part covering its own words."""
    text = "aaaa bbbb cccc dddd"
    chunks = split(text, [{"type": "bold", "offset": 5, "length": 9}], limit=10)
    assert [c.text for c in chunks] == ["aaaa bbbb", "cccc dddd"]
    assert chunks[0].entities == ({"type": "bold", "offset": 5, "length": 4},)
    assert chunks[1].entities == ({"type": "bold", "offset": 0, "length": 4},)


def test_huge_word_is_hard_cut_without_splitting_a_surrogate_pair() -> None:
    """A 10,000-character word with no spaces is cut at the limit but never between an emoji's halves."""
    word = "a" + "😀" * 5000 + "b" * 4999
    chunks = split(word, [])
    assert "".join(c.text for c in chunks) == word
    assert all(u16(c.text) <= MAX_MESSAGE_UTF16 for c in chunks)
    assert u16(chunks[0].text) == MAX_MESSAGE_UTF16 - 1  # the next emoji would straddle the limit
    for chunk in chunks:
        chunk.text.encode("utf-8")  # raises on a lone surrogate


def test_text_that_fits_is_one_chunk_with_its_entities() -> None:
    """Text within the limit comes back whole, entities untouched."""
    entities = [{"type": "bold", "offset": 0, "length": 2}]
    assert split("hi there", entities, limit=8) == [
        Chunk("hi there", ({"type": "bold", "offset": 0, "length": 2},))
    ]


# --- split: properties ----------------------------------------------------------------------

_TOKENS = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
    st.text(alphabet="中文字符测试汉语", min_size=1, max_size=12),
    st.text(alphabet="😀🎉𝄞🚀", min_size=1, max_size=6),
    st.sampled_from([" ", "  ", "\n", "\n\n", "\n\n\n", " \n ", "\t"]),
)
_TEXTS = st.lists(_TOKENS, max_size=60).map("".join)


@st.composite
def _text_and_entities(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    text = draw(_TEXTS)
    entities = []
    for _ in range(draw(st.integers(0, 4)) if text else 0):
        a = draw(st.integers(0, len(text) - 1))
        b = draw(st.integers(a + 1, len(text)))
        entities.append({"type": "bold", "offset": u16(text[:a]), "length": u16(text[a:b])})
    return text, entities


def _locate(text: str, chunks: list[Chunk]) -> list[int]:
    """Where each chunk starts in ``text`` (code points), asserting only whitespace lies between."""
    starts, cursor = [], 0
    for chunk in chunks:
        at = text.find(chunk.text, cursor)
        assert at >= 0, chunk
        assert text[cursor:at].strip() == "", (text[cursor:at], chunk)
        starts.append(at)
        cursor = at + len(chunk.text)
    assert text[cursor:].strip() == ""
    return starts


@settings(max_examples=300, deadline=None)
@given(case=_text_and_entities(), limit=st.integers(2, 60))
def test_split_properties(case: tuple[str, list[dict[str, Any]]], limit: int) -> None:
    """Chunks fit, are trimmed and non-empty, lose only whitespace at cuts, and clip entities exactly."""
    text, entities = case
    chunks = split(text, entities, limit)

    assert all(u16(c.text) <= limit for c in chunks)
    assert all(c.text and c.text == c.text.strip() for c in chunks)
    assert "".join(text.split()) == "".join("".join(c.text for c in chunks).split())
    assert_entities_inside(chunks)

    for chunk, start in zip(chunks, _locate(text, chunks), strict=True):
        lo, hi = u16(text[:start]), u16(text[:start]) + u16(chunk.text)
        expected = []
        for e in entities:
            begin, end = max(e["offset"], lo), min(e["offset"] + e["length"], hi)
            if end > begin:
                expected.append({**e, "offset": begin - lo, "length": end - begin})
        assert list(chunk.entities) == expected


@given(text=st.text(alphabet=" \n\t", max_size=20), limit=st.integers(1, 10))
def test_whitespace_only_text_gives_no_chunks(text: str, limit: int) -> None:
    """Nothing but whitespace splits into no messages at all."""
    assert split(text, [], limit) == []
