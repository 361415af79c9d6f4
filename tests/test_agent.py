"""AgentClient against the local fake Yuanqi server over a real aiohttp client session."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import pytest

from bot.agent import client
from bot.agent.client import AgentClient, AgentConfig
from bot.agent.events import AgentEvent, Finish, TextDelta, ToolStep, Usage
from bot.errors import AgentError, AgentProtocolError, AgentRejected, AgentTimeout, AgentUnavailable
from tests.fakes.yuanqi import (
    ASSISTANT_ID,
    TOOL_OUTPUT,
    YUANQI_TOKEN,
    Behaviour,
    Disconnect,
    FakeYuanqi,
    Gate,
    Hang,
    HangAfter,
    HttpError,
    Json,
    Raw,
    Stream,
    StreamError,
)

USER_ID = "tg_x"
HI = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
# With rng() == 0.5 the jittered backoff is 0.75 x (0.5 s, 1 s, 2 s, ...).
BACKOFF = [0.375, 0.75]

E = TypeVar("E", bound=AgentError)


class SleepRecorder:
    """Stands in for asyncio.sleep: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_agent(
    http: aiohttp.ClientSession, yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> Callable[..., AgentClient]:
    """An AgentClient on the fake; keyword arguments override AgentConfig fields."""

    def make(**overrides: Any) -> AgentClient:
        config = AgentConfig(
            url=yuanqi.url, token=YUANQI_TOKEN, assistant_id=ASSISTANT_ID,
            first_byte_timeout=5, total_timeout=10, max_retries=2,
        )
        return AgentClient(http, dataclasses.replace(config, **overrides), sleep=sleeps, rng=lambda: 0.5)

    return make


@pytest.fixture
def agent(make_agent: Callable[..., AgentClient]) -> AgentClient:
    return make_agent()


async def collect(agent: AgentClient, messages: list[dict[str, Any]] = HI) -> list[AgentEvent]:
    return [e async for e in agent.stream_reply(USER_ID, messages)]


async def collect_until(agent: AgentClient, error: type[E]) -> tuple[list[AgentEvent], E]:
    """The events yielded before stream_reply raised ``error`` (which it must)."""
    events: list[AgentEvent] = []
    with pytest.raises(error) as info:
        async for event in agent.stream_reply(USER_ID, HI):
            events.append(event)
    return events, info.value


def text_of(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- request ----------------------------------------------------------------------------------


async def test_request_follows_the_documented_shape(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """The request carries bearer auth, X-Source, a string assistant_id, user_id, stream and the history."""
    history = [
        {"role": "user", "content": [{"type": "text", "text": "你好"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "你好！有什么可以帮你？"}]},
        {"role": "user", "content": [
            {"type": "text", "text": "这张图里是什么？"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        ]},
    ]
    yuanqi.script(Stream(["ok"]))
    await collect(agent, history)
    [rec] = yuanqi.requests  # recorded at all only if the POST hit /openapi/v1/agent/chat/completions
    assert rec.problems == []
    assert rec.headers["authorization"] == f"Bearer {YUANQI_TOKEN}"
    assert rec.headers["x-source"] == "openapi"
    assert rec.body == {
        "assistant_id": ASSISTANT_ID,
        "user_id": USER_ID,
        "stream": True,
        "messages": history,
    }
    assert isinstance(rec.body["assistant_id"], str)


# --- streamed answers -------------------------------------------------------------------------


async def test_stream_yields_text_deltas_then_finish(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """Each streamed chunk becomes a TextDelta, and the closing chunk a Finish with reason and usage."""
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    yuanqi.script(Stream(["你好", "，", "世界"], usage=usage))
    assert await collect(agent) == [
        TextDelta("你好"), TextDelta("，"), TextDelta("世界"), Finish("stop", Usage(12, 3, 15)),
    ]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"crlf": True}, id="crlf"),
        pytest.param({"space": False}, id="no-space-after-data"),
        pytest.param({"extra_events": [": keep-alive", "event: ping", "data: not json"]}, id="extra-events"),
        pytest.param(
            {"crlf": True, "space": False, "extra_events": [": c", "event: ping", "data: {oops"]}, id="all",
        ),
    ],
)
async def test_wire_variants_give_the_same_answer(
    agent: AgentClient, yuanqi: FakeYuanqi, options: dict[str, Any]
) -> None:
    """CRLF line ends, a missing space after data:, comments, other events and junk data change nothing."""
    yuanqi.script(Stream(["Hello", ", ", "world"], **options))
    events = await collect(agent)
    assert events[:3] == [TextDelta("Hello"), TextDelta(", "), TextDelta("world")]
    assert events[3:] == [Finish("stop", Usage(10, 3, 13))]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(Stream(["a", "b"], finish_reason=None, done=False), id="plain-eof"),
        pytest.param(Stream(["a", "b"], finish_reason=None, done=True), id="done-without-finish-reason"),
    ],
)
async def test_stream_without_finish_chunk_still_finishes(
    agent: AgentClient, yuanqi: FakeYuanqi, stream: Stream
) -> None:
    """A stream that ends without a finish_reason still ends with exactly one Finish('stop')."""
    yuanqi.script(stream)
    assert await collect(agent) == [TextDelta("a"), TextDelta("b"), Finish("stop", None)]
    assert len(yuanqi.requests) == 1


async def test_finish_chunk_without_done_ends_the_answer(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """A finish chunk followed by plain EOF (no [DONE]) ends with that chunk's Finish, once."""
    yuanqi.script(Stream(["a"], done=False, final_text_in_finish_chunk="b"))
    assert await collect(agent) == [TextDelta("a"), TextDelta("b"), Finish("stop", Usage(10, 1, 11))]


async def test_text_is_handed_over_as_it_arrives(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """The first TextDelta reaches the caller while the server is still holding back the rest."""
    gate = Gate()
    yuanqi.script(Stream(["Hel", gate, "lo"]))
    async with contextlib.aclosing(agent.stream_reply(USER_ID, HI)) as events:
        assert await anext(events) == TextDelta("Hel")
        await yuanqi.wait_for(lambda: gate.waiting)
        gate.open()
        rest = [e async for e in events]
    assert rest == [TextDelta("lo"), Finish("stop", Usage(10, 2, 12))]


async def test_tool_call_stream_yields_steps_and_hides_tool_output(
    agent: AgentClient, yuanqi: FakeYuanqi
) -> None:
    """Tool-call and tool-output deltas arrive as ToolSteps before the text; the tool output is never text."""
    yuanqi.script(Stream(["今天", "晴。"], tool_call="weather"))
    events = await collect(agent)
    assert events == [
        ToolStep("weather"),
        ToolStep(None, done=True),
        TextDelta("今天"),
        TextDelta("晴。"),
        Finish("stop", Usage(10, 2, 12)),
    ]
    assert "TOOL-OUTPUT" not in text_of(events)
    assert TOOL_OUTPUT not in text_of(events)


# --- whole answers and finish reasons ---------------------------------------------------------


async def test_json_answer_yields_whole_text_and_finish(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """A non-stream JSON answer yields its whole text as one TextDelta, then Finish with usage."""
    text = "The whole answer, at once."  # the fake reports len // 4 = 6 completion tokens
    yuanqi.script(Json(text))
    assert await collect(agent) == [TextDelta(text), Finish("stop", Usage(10, 6, 16))]


@pytest.mark.parametrize("reason", ["sensitive", "tool_fail"])
@pytest.mark.parametrize(
    "make", [pytest.param(lambda r: Stream(["par", "tial"], finish_reason=r), id="stream"),
             pytest.param(lambda r: Json("partial", finish_reason=r), id="json")],
)
async def test_special_finish_reasons_come_through(
    agent: AgentClient, yuanqi: FakeYuanqi, make: Callable[[str], Behaviour], reason: str
) -> None:
    """finish_reason 'sensitive' and 'tool_fail' arrive as the Finish reason after the text."""
    yuanqi.script(make(reason))
    events = await collect(agent)
    assert text_of(events) == "partial"
    assert isinstance(events[-1], Finish) and events[-1].reason == reason
    assert len(yuanqi.requests) == 1


@pytest.mark.parametrize("reason", ["sensitive", "tool_fail"])
@pytest.mark.parametrize(
    "make", [pytest.param(lambda r: Stream([], finish_reason=r), id="stream"),
             pytest.param(lambda r: Json("", finish_reason=r), id="json")],
)
async def test_textless_answer_with_finish_reason_still_finishes(
    agent: AgentClient, yuanqi: FakeYuanqi, make: Callable[[str], Behaviour], reason: str
) -> None:
    """A blocked or failed answer with no text at all still ends in Finish(reason), not an error."""
    yuanqi.script(make(reason))
    events = await collect(agent)
    assert text_of(events) == ""
    assert [e.reason for e in events if isinstance(e, Finish)] == [reason]
    assert len(yuanqi.requests) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        pytest.param('{"error": {"message": "quota exhausted"}}', "application/json", "quota exhausted",
                     id="json-error-object"),
        pytest.param("<html><body><h1>Oops</h1></body></html>", "text/html", "Oops", id="html"),
    ],
)
async def test_unreadable_200_answer_is_a_protocol_error(
    agent: AgentClient, yuanqi: FakeYuanqi, body: str, content_type: str, detail: str
) -> None:
    """A 200 non-stream body that holds an error or no JSON raises AgentProtocolError, without retry."""
    yuanqi.script(HttpError(200, body=body, content_type=content_type))
    events, error = await collect_until(agent, AgentProtocolError)
    assert events == []
    assert detail in error.detail and "<" not in error.detail
    assert len(yuanqi.requests) == 1


# --- HTTP errors and retries ------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_rejected_without_retry(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder, status: int
) -> None:
    """A 4xx (other than 429) raises AgentRejected with the status and the server's message, once."""
    yuanqi.script(HttpError(status, body=f'{{"error": {{"message": "nope {status}"}}}}'), Stream(["never"]))
    events, error = await collect_until(agent, AgentRejected)
    assert events == []
    assert (error.status, error.detail) == (status, f"nope {status}")
    assert len(yuanqi.requests) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_server_errors_are_retried_with_backoff(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder, status: int
) -> None:
    """429 and 5xx are retried with jittered exponential backoff until a later attempt succeeds."""
    yuanqi.script(HttpError(status), HttpError(status), Stream(["ok"]))
    events = await collect(agent)
    assert events == [TextDelta("ok"), Finish("stop", Usage(10, 1, 11))]
    assert len(yuanqi.requests) == 3
    assert sleeps.delays == BACKOFF


@pytest.mark.parametrize("status", [429, 500, 502])
async def test_server_errors_give_up_after_max_retries(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder, status: int
) -> None:
    """After max_retries retries the last failure surfaces as AgentUnavailable with its status and message."""
    body = '{"error": {"message": "try later"}}'
    yuanqi.script(*[HttpError(status, body=body)] * 3, Stream(["too late"]))
    events, error = await collect_until(agent, AgentUnavailable)
    assert events == []
    assert (error.status, error.detail) == (status, "try later")
    assert len(yuanqi.requests) == 3
    assert sleeps.delays == BACKOFF


async def test_retry_after_is_honoured(agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder) -> None:
    """A 429's Retry-After header is the delay before the next attempt."""
    yuanqi.script(HttpError(429, retry_after=3), Stream(["ok"]))
    assert text_of(await collect(agent)) == "ok"
    assert sleeps.delays == [3.0]
    assert len(yuanqi.requests) == 2


async def test_retry_after_beyond_the_deadline_gives_up_at_once(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> None:
    """A Retry-After that would outlast the answer's total time raises at once instead of sleeping."""
    yuanqi.script(HttpError(429, retry_after=60), Stream(["never"]))
    _, error = await collect_until(agent, AgentUnavailable)
    assert error.status == 429
    assert sleeps.delays == []
    assert len(yuanqi.requests) == 1


async def test_html_error_page_gives_a_readable_detail(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi
) -> None:
    """An HTML 502 gateway page becomes a short, tag-free detail on AgentUnavailable."""
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    yuanqi.script(HttpError(502, body=page, content_type="text/html"))
    _, error = await collect_until(make_agent(max_retries=0), AgentUnavailable)
    assert error.status == 502
    assert error.detail == "502 Bad Gateway 502 Bad Gateway nginx"
    assert len(yuanqi.requests) == 1


async def test_connection_refused_is_unavailable_after_retries(
    make_agent: Callable[..., AgentClient], sleeps: SleepRecorder
) -> None:
    """When nothing listens at the URL, each attempt fails fast and the last raises AgentUnavailable."""
    url = f"http://127.0.0.1:{closed_port()}/openapi/v1/agent/chat/completions"
    _, error = await collect_until(make_agent(url=url), AgentUnavailable)
    assert error.status is None
    assert sleeps.delays == BACKOFF


# --- timeouts and broken streams --------------------------------------------------------------


async def test_silent_server_times_out_on_first_byte(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi
) -> None:
    """A server that sends nothing raises AgentTimeout after first_byte_timeout, not the total timeout."""
    yuanqi.script(Hang())
    loop = asyncio.get_running_loop()
    started = loop.time()
    events, _ = await collect_until(make_agent(first_byte_timeout=0.3), AgentTimeout)
    assert events == []
    assert loop.time() - started < 5  # total_timeout is 10


async def test_stream_with_headers_but_no_events_times_out_on_first_byte(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi
) -> None:
    """A 200 stream that opens but sends no event raises AgentTimeout after first_byte_timeout."""
    yuanqi.script(HangAfter([]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    events, _ = await collect_until(make_agent(first_byte_timeout=0.3), AgentTimeout)
    assert events == []
    assert loop.time() - started < 5  # total_timeout is 10


async def test_stalled_stream_yields_partial_text_then_times_out(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> None:
    """A stream that stalls after some text yields that text, then AgentTimeout, and is not retried."""
    yuanqi.script(HangAfter(["partial"]), Stream(["again"]))
    events, _ = await collect_until(make_agent(total_timeout=0.3), AgentTimeout)
    assert events == [TextDelta("partial")]
    assert len(yuanqi.requests) == 1
    assert sleeps.delays == []


async def test_disconnect_after_text_is_unavailable_without_retry(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> None:
    """A connection dropped after some text yields that text, then AgentUnavailable, and is not retried."""
    yuanqi.script(Disconnect(["partial"]), Stream(["again"]))
    events, _ = await collect_until(agent, AgentUnavailable)
    assert events == [TextDelta("partial")]
    assert len(yuanqi.requests) == 1
    assert sleeps.delays == []


async def test_disconnect_before_text_is_retried(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> None:
    """A connection dropped before any text is retried, and the retry's answer is yielded once."""
    yuanqi.script(Disconnect([]), Stream(["ok"]))
    assert await collect(agent) == [TextDelta("ok"), Finish("stop", Usage(10, 1, 11))]
    assert len(yuanqi.requests) == 2
    assert sleeps.delays == BACKOFF[:1]


async def test_empty_stream_is_retried(agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder) -> None:
    """A stream that ends cleanly without a single event is retried like a failed call."""
    yuanqi.script(Stream([], finish_reason=None), Stream(["ok"]))
    assert await collect(agent) == [TextDelta("ok"), Finish("stop", Usage(10, 1, 11))]
    assert len(yuanqi.requests) == 2
    assert sleeps.delays == BACKOFF[:1]


async def test_error_inside_stream_is_a_protocol_error(
    agent: AgentClient, yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> None:
    """An error object inside a 200 stream raises AgentProtocolError with its message, after the text."""
    yuanqi.script(StreamError(["x"]), Stream(["again"]))
    events, error = await collect_until(agent, AgentProtocolError)
    assert events == [TextDelta("x")]
    assert error.detail == "upstream failed"
    assert len(yuanqi.requests) == 1
    assert sleeps.delays == []


# --- idle streams, odd events, closing --------------------------------------------------------

KEEPALIVE = 'data: "keepalive"'


async def test_stream_silent_mid_answer_times_out_on_idle(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi, sleeps: SleepRecorder
) -> None:
    """A stream that goes quiet after its first text raises AgentTimeout after idle_timeout, without retry."""
    yuanqi.script(HangAfter(["partial"]), Stream(["again"]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    events, error = await collect_until(make_agent(idle_timeout=0.3), AgentTimeout)
    assert events == [TextDelta("partial")]
    assert loop.time() - started < 5  # total_timeout is 10
    assert "sent nothing" in error.detail
    assert len(yuanqi.requests) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize("pause", [client.READ_PAUSE, 0.5])
async def test_steady_stream_longer_than_idle_timeout_is_not_cut(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi, monkeypatch: pytest.MonkeyPatch,
    pause: float,
) -> None:
    """Idle time is measured between events: an answer longer than idle_timeout in total runs to
    its end, even when the client's own pause between reads is longer than idle_timeout."""
    monkeypatch.setattr(client, "READ_PAUSE", pause)
    yuanqi.script(Stream(["a", "b", "c", "d", "e"], chunk_delay=0.15))
    events = await collect(make_agent(idle_timeout=0.4))
    assert text_of(events) == "abcde"
    assert isinstance(events[-1], Finish)


async def test_keepalives_keep_a_quiet_answer_alive(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi
) -> None:
    """Keep-alive events count as activity: a pause longer than idle_timeout, filled with them, is not cut."""
    yuanqi.script(Stream(["a", *[Raw(KEEPALIVE, delay=0.15) for _ in range(5)], "b"]))
    events = await collect(make_agent(idle_timeout=0.4))
    assert text_of(events) == "ab"


async def test_keepalives_are_not_a_first_byte(
    make_agent: Callable[..., AgentClient], yuanqi: FakeYuanqi
) -> None:
    """Before the first answer event only first_byte_timeout applies, however many keep-alives arrive."""
    yuanqi.script(Stream([*[Raw(KEEPALIVE, delay=0.1) for _ in range(8)], "late"]))
    events, error = await collect_until(make_agent(first_byte_timeout=0.3, idle_timeout=5), AgentTimeout)
    assert events == []
    assert error.detail == "no answer from the agent"


ODD_EVENTS = [
    KEEPALIVE, "data: keepalive", "data: {}", "data: 42", "data: [1, 2]", "data: null", "data: true",
    'data: {"type": "ping"}', 'data: {"code": 0, "msg": "ok"}', 'data: {"id": "x", "choices": null}',
    "data:", ": comment", "event: ping",
]


async def test_odd_events_before_and_between_text_are_skipped(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """Events that are not answer chunks, anywhere in the stream, are skipped and the answer is whole."""
    odd = [Raw(e) for e in ODD_EVENTS]
    yuanqi.script(Stream([*odd, "Hel", *odd, "lo"], extra_events=ODD_EVENTS))
    assert await collect(agent) == [TextDelta("Hel"), TextDelta("lo"), Finish("stop", Usage(10, 2, 12))]


async def test_closing_the_stream_hangs_up_on_the_agent(agent: AgentClient, yuanqi: FakeYuanqi) -> None:
    """A caller that stops reading mid-answer closes the connection; the agent sees it at once."""
    gate = Gate()
    yuanqi.script(Stream(["Hel", gate, "lo"]))
    async with contextlib.aclosing(agent.stream_reply(USER_ID, HI)) as events:
        assert await anext(events) == TextDelta("Hel")
        await yuanqi.wait_for(lambda: gate.waiting)
    await yuanqi.wait_for(lambda: yuanqi.in_flight == 0, timeout=2)
    assert not gate.is_open
