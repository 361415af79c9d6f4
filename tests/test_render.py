"""render() and split(): Markdown into Telegram text + UTF-16 entities, cut to fit a message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reply.render import MAX_MESSAGE_UTF16, Chunk, render, split
from tests.entity_rules import violations

SPEC = Path(__file__).parent / "data" / "commonmark_spec.json"


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


def assert_valid(chunks: list[Chunk]) -> None:
    """Every message follows the Bot API's entity rules (tests/entity_rules.py)."""
    for chunk in chunks:
        assert violations(chunk.text, chunk.entities) == [], chunk


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
    "中文 **粗体** 结束。**注意：**这里 `List<String>` 和 List<String>，*a ||b* c||。\n\n"
    "> > [`x`](https://a.com) [rel](/rel)"
)


def test_every_prefix_of_a_streamed_answer_renders_inside_bounds() -> None:
    """Each intermediate state of a streamed answer (every prefix) renders to valid entities."""
    for end in range(1, len(_DOCUMENT) + 1):
        chunks = render(_DOCUMENT[:end])
        try:
            assert_valid(chunks)
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


# --- render: faithful rendering (issue 8, item 11) -------------------------------------------


def test_note_never_lands_inside_code_that_ended_in_spaces() -> None:
    """Trimming the answer's trailing spaces shortens its entities too, so the note stands alone."""
    [chunk] = render("```\nx   \n```", note="n")
    assert chunk.text == "x\n\nn"
    assert chunk.entities == ({"type": "pre", "offset": 0, "length": 1}, {"type": "italic", "offset": 3, "length": 1})


@pytest.mark.parametrize(
    "markdown",
    [
        pytest.param("if a<b and c>d", id="comparison"),
        pytest.param("List<String>", id="generic-type"),
        pytest.param("<script>x</script>", id="script-tag"),
    ],
)
def test_tag_like_text_shows_as_written(markdown: str) -> None:
    """Text that looks like an HTML tag, outside code, is shown exactly as the agent wrote it."""
    [chunk] = render(markdown)
    assert (chunk.text, chunk.entities) == (markdown, ())


def test_cjk_bold_after_full_width_punctuation_is_bold() -> None:
    """Bold closed right after full-width punctuation and before a CJK letter is bold, as meant."""
    [chunk] = render("**注意：**这里")
    assert chunk.text == "注意：这里"
    assert [(e["type"], covered(chunk.text, e)) for e in chunk.entities] == [("bold", "注意：")]


def test_half_overlapping_styles_are_split_to_nest() -> None:
    """In ``*a ||b* c||`` italic still covers "a b" and the spoiler "b c", in pieces that nest."""
    [chunk] = render("*a ||b* c||")
    assert_valid([chunk])
    parts = {kind: "".join(covered(chunk.text, e) for e in chunk.entities if e["type"] == kind) for kind in ("italic", "spoiler")}
    assert parts == {"italic": "a b", "spoiler": "b c"}


@pytest.mark.parametrize(
    ("markdown", "kept"),
    [
        pytest.param("> a\n> > b", [("blockquote", "a\nb")], id="nested-blockquote"),
        pytest.param("[`x`](https://a.com)", [("text_link", "x")], id="code-inside-link"),
        pytest.param("[![i](https://i.png)](https://a.com)", [("text_link", "🖼i")], id="link-inside-link"),
        pytest.param("**use `x` now**", [("bold", "use "), ("code", "x"), ("bold", " now")], id="code-inside-bold"),
    ],
)
def test_entities_that_may_not_nest_are_untangled(markdown: str, kept: list[tuple[str, str]]) -> None:
    """A quote in a quote, code or a link in a link, code in bold: what may not nest is undone."""
    [chunk] = render(markdown)
    assert_valid([chunk])
    assert [(e["type"], covered(chunk.text, e)) for e in chunk.entities] == kept


def test_only_absolute_web_and_tg_links_stay_links() -> None:
    """Relative, anchor and javascript: targets become plain text; https and tg:// links stay."""
    [chunk] = render("[a](/rel) [b](#x) [c](javascript:alert(1)) [d](https://d.com) [e](tg://user?id=1)")
    assert chunk.text == "a b c d e"
    assert [(covered(chunk.text, e), e["url"]) for e in chunk.entities] == [("d", "https://d.com"), ("e", "tg://user?id=1")]


@pytest.mark.parametrize(
    ("fence", "language"),
    [
        pytest.param('```python title="app.py"', "python", id="first-word"),
        pytest.param("```{.python}", None, id="not-a-plain-word"),
    ],
)
def test_code_language_is_a_plain_word(fence: str, language: str | None) -> None:
    """A fence's info string gives the first word as the language, or none when it is not a plain word."""
    [chunk] = render(f"{fence}\nx = 1\n```")
    [entity] = chunk.entities
    assert entity.get("language") == language


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        pytest.param("a \ud83d\ude00 b", "a 😀 b", id="halves-joined"),
        pytest.param("a \ude00 **b**", "a \ufffd b", id="lone-half-replaced"),
        pytest.param("a \ud83d", "a \ufffd", id="trailing-half-replaced"),
    ],
)
def test_surrogate_halves_never_break_rendering(markdown: str, text: str) -> None:
    """Halves of an emoji are joined, a lone half shows as U+FFFD, and nothing raises."""
    [chunk] = render(markdown)
    assert chunk.text == text
    assert_valid([chunk])


def test_messages_split_from_a_long_answer_each_follow_the_rules() -> None:
    """Past 4096 UTF-16 units, every message keeps the rules: links, nesting, languages, no overlap."""
    section = (
        "> quoted `code` and [a link](/relative) and [web](https://a.com)\n> > nested\n\n"
        "*a ||b* c|| **注意：**这里 if a<b and c>d\n\n```python title=\"a.py\"\nprint(1)   \n```\n\n"
    )
    chunks = render(section * 60, note="(interrupted)")
    assert len(chunks) > 1
    assert all(u16(c.text) <= MAX_MESSAGE_UTF16 for c in chunks)
    assert_valid(chunks)
    assert sum(c.text.count("if a<b and c>d") for c in chunks) == 60


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


# --- render: the Bot API's entity rules, over generated Markdown and the CommonMark spec --------

_MARKDOWN_TOKENS = st.sampled_from(
    [
        "word", "more words", "中文", "注意", "这里", "😀", "：", "，", "「", "」", "“", "”", ".", ":", "!", "(", ")", '"',
        "*", "**", "_", "__", "~~", "||", "`", "```", '```python title="a.py"\n', "```{.py}\n", "\n```\n",
        "[", "](https://example.com/x)", "](/rel)", "](#a)", "](javascript:alert(1))", "](tg://user?id=1)",
        "<https://a.com>", "![img](https://i.png)", "\n> ", "\n> > ", "\n>> ",
        "<b>", "</b>", "<String>", "a<b and c>d", "<script>", "<!-- c -->", "<div>\n", "<tg-spoiler>",
        "\ud83d", "\ude00", "\n", "\n\n", " ", "   ", "- ", "1. ", "# ", "|a|b|\n|-|-|\n|c|d|\n", "\\", "$", "&amp;",
    ]
)
_MARKDOWN = st.lists(_MARKDOWN_TOKENS, max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(markdown=_MARKDOWN, limit=st.sampled_from([MAX_MESSAGE_UTF16, 12, 40, 100]), note=st.sampled_from(["", "⚠️ 注意"]))
def test_generated_markdown_always_follows_the_entity_rules(markdown: str, limit: int, note: str) -> None:
    """Any mix of emphasis, code, links, quotes, spoilers, CJK, halves of emoji and tags renders validly."""
    chunks = render(markdown, note=note, limit=limit)
    assert all(u16(c.text) <= limit for c in chunks)
    assert_valid(chunks)


_PROSE_WITH_TAGS = st.lists(
    st.sampled_from(["word", "中文", " ", "\n", "\n\n", "**", "*", "注意：", "<b>", "</i>", "List<String>", "a<b and c>d"]),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(markdown=_PROSE_WITH_TAGS)
def test_tags_in_prose_always_reach_the_reader(markdown: str) -> None:
    """Every tag-like token in prose (no code, no links) is in the rendered text, as written."""
    text = "\n".join(c.text for c in render(markdown))
    for tag in ("<b>", "</i>", "<String>", "<b and c>"):
        assert text.count(tag) == markdown.count(tag), (markdown, text)


def _spec_examples() -> list[tuple[int, str]]:
    return [(number, markdown) for number, _section, markdown in json.loads(SPEC.read_text())["examples"]]


def test_every_commonmark_spec_example_follows_the_entity_rules() -> None:
    """All 652 CommonMark 0.31.2 examples render validly, whole, with a note, and cut into small messages."""
    failures = []
    for number, markdown in _spec_examples():
        for limit, note in ((MAX_MESSAGE_UTF16, ""), (MAX_MESSAGE_UTF16, "n"), (16, "n")):
            for chunk in render(markdown, note=note, limit=limit):
                if broken := violations(chunk.text, chunk.entities):
                    failures.append((number, limit, note, broken[0]))
    assert len(_spec_examples()) == 652
    assert failures == []
