"""convert() and prepare(): our fixes around telegramify-markdown, seen from the source and the result."""

from __future__ import annotations

from typing import Any

import pytest
import telegramify_markdown

from bot.reply.markdown import convert, prepare


def covered(text: str, entity: dict[str, Any]) -> str:
    raw = text.encode("utf-16-le")
    return raw[2 * entity["offset"] : 2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


def styled(markdown: str) -> list[tuple[str, str]]:
    text, entities = convert(markdown)
    return [(x["type"], covered(text, x)) for x in entities]


# --- raw HTML shows as written ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        pytest.param("if a<b and c>d", "if a<b and c>d", id="comparison"),
        pytest.param("use List<String> here", "use List<String> here", id="generic-type"),
        pytest.param("<script>x</script>", "<script>x</script>", id="inline-tags"),
        pytest.param("<!-- note -->", "<!-- note -->", id="comment"),
        pytest.param('<a href="`">`', '<a href="`">`', id="markdown-inside-a-tag-stays-literal"),
        pytest.param("<div>\nhi **x**\n</div>\n\nafter", "<div>\nhi **x**\n</div>\n\nafter", id="html-block"),
        pytest.param("> quoted <a\n> b=1> tag", "quoted <a\nb=1> tag", id="tag-across-quoted-lines"),
        pytest.param("a `<b>` c", "a <b> c", id="inside-code-untouched"),
        pytest.param("see <https://example.com>", "see https://example.com", id="autolink-still-a-link"),
    ],
)
def test_raw_html_shows_as_written(markdown: str, text: str) -> None:
    """Tag-like text outside code reaches the reader character for character; code and autolinks as before."""
    assert convert(markdown)[0] == text


def test_html_in_a_table_keeps_the_columns_aligned() -> None:
    """A tag in a table cell counts its full width when the columns are padded."""
    text, _ = convert("| a<br>b | c |\n|---|---|\n| x | y |")
    lines = text.split("\n")
    assert lines[0].startswith("a<br>b | c")
    assert lines[2].index("|") == lines[0].index("|")


def test_entities_move_with_the_restored_text() -> None:
    """Bold after a tag holding an emoji (two UTF-16 units) still covers exactly its word."""
    assert styled("x <b title='😀'> **bold** y") == [("bold", "bold")]


# --- CJK emphasis -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "bold"),
    [
        pytest.param("**注意：**这里", "注意：", id="closer-after-full-width-colon"),
        pytest.param("这是**「重要」**内容", "「重要」", id="opener-and-closer-beside-brackets"),
        pytest.param('这是**"重要"**内容', '"重要"', id="ascii-quotes-beside-cjk"),
        pytest.param("**注意：**これは", "注意：", id="japanese"),
        pytest.param("**주의:**여기", "주의:", id="korean"),
        pytest.param("前面**注意：**这里", "注意：", id="mid-sentence"),
    ],
)
def test_cjk_bold_renders_bold(markdown: str, bold: str) -> None:
    """A ``**`` run between CJK punctuation and a letter closes (or opens) bold as the writer meant."""
    assert styled(markdown) == [("bold", bold)]


@pytest.mark.parametrize(
    "markdown",
    [
        pytest.param('**"quoted"**word', id="no-cjk-neighbour"),
        pytest.param("a **注意：** b", id="already-flanking"),
        pytest.param("`**注意：**这里`", id="inside-code"),
        pytest.param("\\**注意：**这里", id="escaped"),
        pytest.param("| **注意：**这里 | b |\n|---|---|", id="table-row"),
        pytest.param("2*3：*4", id="single-stars-left-alone"),
    ],
)
def test_other_star_runs_render_as_the_library_does(markdown: str) -> None:
    """Runs with no CJK neighbour, or already fine, or in code, escaped or in a table: the library's result."""
    text, entities = telegramify_markdown.convert(markdown)
    assert convert(markdown) == (text.rstrip(), [x.to_dict() for x in entities])


def test_marker_in_a_link_target_is_removed() -> None:
    """A star run in a URL gets no marker left behind: the link points where it was written to."""
    _, entities = convert("[x](https://a.com/：**这)")
    assert entities == [{"type": "text_link", "offset": 0, "length": 1, "url": "https://a.com/：**这"}]


def test_private_use_characters_of_the_answer_survive() -> None:
    """The answer's own private-use characters are neither taken as markers nor lost."""
    assert convert("\ue000 **注意：**这里 <b> \ue001")[0] == "\ue000 注意：这里 <b> \ue001"


def test_plain_markdown_is_not_touched() -> None:
    """Markdown with neither tags nor CJK star runs goes to the library exactly as written."""
    markdown = "Some **bold** and `a < b` and 1*2*3"
    assert prepare(markdown) == (markdown, {})
