"""bot.agent.sse, pure: events out of bytes, whatever the chunking and line ends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.agent.sse import SseSplitter


def split_all(chunks: list[bytes]) -> list[bytes]:
    splitter = SseSplitter()
    events = [event for chunk in chunks for event in splitter.feed(chunk)]
    return events + splitter.close()


@pytest.mark.parametrize(
    ("raw", "events"),
    [
        pytest.param(b'data: {"a":1}\n\n', [b'{"a":1}'], id="lf"),
        pytest.param(b'data: {"a":1}\r\n\r\n', [b'{"a":1}'], id="crlf"),
        pytest.param(b'data: {"a":1}\r\r', [b'{"a":1}'], id="cr"),
        pytest.param(b'data:{"a":1}\n\n', [b'{"a":1}'], id="no-space"),
        pytest.param(b'data:  x\n\n', [b" x"], id="only-one-space-stripped"),
        pytest.param(b": keep-alive\n\ndata: x\n\n", [b"x"], id="comment"),
        pytest.param(b"event: message\nid: 7\ndata: x\nretry: 10\n\n", [b"x"], id="other-fields"),
        pytest.param(b"data: a\ndata: b\n\n", [b"a\nb"], id="multi-line"),
        pytest.param(b"data\n\n", [b""], id="data-without-colon"),
        pytest.param(b"data: x", [b"x"], id="open-at-eof"),
        pytest.param(b"data: x\n", [b"x"], id="no-blank-line-at-eof"),
        pytest.param(b"\n\n\n", [], id="blank-lines"),
        pytest.param(b"datum: x\n\n", [], id="not-data"),
        pytest.param(b"data: [DONE]\n\n", [b"[DONE]"], id="done"),
    ],
)
def test_events(raw: bytes, events: list[bytes]) -> None:
    assert split_all([raw]) == events


_TEXT = st.text(
    alphabet=st.sampled_from([*'ab {}":,[]你好😀é\\', "\u2028"]), max_size=12
)
_EVENT = st.lists(_TEXT, min_size=1, max_size=3)  # data lines of one event


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_EVENT, max_size=6),
    ends=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1, max_size=4),
    spaced=st.booleans(),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_any_chunking_gives_the_same_events(
    events: list[list[str]], ends: list[bytes], spaced: bool, comments: bool, cuts: list[int]
) -> None:
    """The same stream split at random byte boundaries (inside CRLF and multi-byte UTF-8 too)
    yields the same events as the stream in one piece."""
    raw = b""
    for n, lines in enumerate(events):
        end = ends[n % len(ends)]
        if comments:
            raw += b": ping" + end
        for line in lines:
            raw += (b"data: " if spaced else b"data:") + line.encode() + end
        raw += end
    def value(line: str) -> bytes:  # SSE strips one space after "data:", whoever put it there
        return line.encode()[1:] if not spaced and line.startswith(" ") else line.encode()

    expected = [b"\n".join(value(line) for line in lines) for lines in events]
    bounds = sorted({min(c, len(raw)) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *bounds], [*bounds, len(raw)], strict=True)]
    assert split_all(chunks) == expected
    assert split_all([bytes([b]) for b in raw]) == expected
