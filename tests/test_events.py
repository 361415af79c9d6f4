"""bot.agent.events, pure: Yuanqi stream chunks and whole answers into TextDelta / ToolStep / Finish."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.events import (
    AgentEvent,
    Finish,
    TextDelta,
    ToolStep,
    Usage,
    error_detail,
    events_from_body,
    parse_payload,
)
from bot.errors import AgentProtocolError

# The one stream chunk captured from the real API (docs/yuanqi-api.md, section 4, JSDK README).
CAPTURED_CHUNK = (
    '{"id":"82956d810a0ff9b413c8bf924c2190c3","created":1717177832,'
    '"choices":[{"delta":{"role":"assistant","content":"我是","time_cost":0}}],'
    '"assistant_id":"mmbnqMnLdYz0","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}'
)
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
FINAL_USAGE = {"prompt_tokens": 690, "completion_tokens": 36, "total_tokens": 726}
WEATHER_CALL = {
    "id": "call_01",
    "type": "function",
    "function": {"name": "weather", "desc": "查询天气", "type": "tool", "arguments": '{"city":"北京"}'},
}
TOOL_OUTPUT = '{"weather":"晴","high":5}'


def chunk(
    delta: dict[str, Any], *, finish_reason: str | None = None, usage: Any = None, **extra: Any
) -> dict[str, Any]:
    """A stream chunk in the documented envelope."""
    choice: dict[str, Any] = {"delta": delta}
    if finish_reason is not None:
        choice["finish_reason"] = finish_reason
    return {
        "id": "a1" * 16,
        "created": 1735689600,
        "choices": [choice],
        "assistant_id": "2046615110539962176",
        "usage": ZERO_USAGE if usage is None else usage,
        **extra,
    }


def text_of(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- stream chunks ----------------------------------------------------------------------------


def test_captured_chunk_is_one_text_delta() -> None:
    """The real captured chunk yields exactly its content increment and no Finish."""
    assert parse_payload(CAPTURED_CHUNK) == [TextDelta("我是")]


def test_documented_tool_agent_sequence() -> None:
    """The doc's tool-agent stream yields tool steps, then the answer text, then Finish with final usage."""
    payloads = [
        chunk({"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL], "time_cost": 820}),
        chunk({"role": "tool", "content": TOOL_OUTPUT, "tool_call_id": "call_01", "time_cost": 640}),
        chunk({"role": "assistant", "content": "今天", "time_cost": 0}),
        chunk({"role": "assistant", "content": "北京晴。", "time_cost": 0}),
        chunk({"role": "assistant", "content": "", "time_cost": 1210}, finish_reason="stop",
              usage=FINAL_USAGE),
    ]
    events = [e for p in payloads for e in parse_payload(json.dumps(p, ensure_ascii=False))]
    assert events == [
        ToolStep("weather"),
        ToolStep(None, done=True),
        TextDelta("今天"),
        TextDelta("北京晴。"),
        Finish("stop", Usage(690, 36, 726)),
    ]


@pytest.mark.parametrize(
    "delta",
    [
        pytest.param({"content": "hi"}, id="role-missing"),
        pytest.param({"role": None, "content": "hi"}, id="role-null"),
        pytest.param({"role": "", "content": "hi"}, id="role-empty"),
    ],
)
def test_delta_without_role_is_assistant_text(delta: dict[str, Any]) -> None:
    """A delta with no role is read as assistant text."""
    assert events_from_body(chunk(delta)) == [TextDelta("hi")]


@pytest.mark.parametrize(
    "delta",
    [
        pytest.param({"role": "tool", "content": TOOL_OUTPUT, "tool_call_id": "call_01"}, id="tool-string"),
        pytest.param({"role": "tool", "content": [{"type": "text", "text": TOOL_OUTPUT}]}, id="tool-parts"),
        pytest.param({"role": "tool", "content": ""}, id="tool-empty"),
    ],
)
def test_tool_role_delta_is_a_step_never_text(delta: dict[str, Any]) -> None:
    """A role=tool delta becomes one anonymous ToolStep and its output never becomes answer text."""
    assert events_from_body(chunk(delta)) == [ToolStep(None, done=True)]


@pytest.mark.parametrize(
    ("calls", "name"),
    [
        pytest.param([WEATHER_CALL], "weather", id="named"),
        pytest.param([{"id": "call_01", "type": "function"}], None, id="no-function"),
        pytest.param([{"function": {"name": 7}}], None, id="name-not-string"),
        pytest.param(["garbage"], None, id="call-not-object"),
    ],
)
def test_tool_calls_delta_is_a_step_never_text(calls: list[Any], name: str | None) -> None:
    """A tool_calls delta becomes a ToolStep named after the first function when it has one."""
    events = events_from_body(chunk({"role": "assistant", "content": "", "tool_calls": calls}))
    assert events == [ToolStep(name)]


@pytest.mark.parametrize("role", ["user", "system", "reasoning"])
def test_delta_with_other_role_is_not_text(role: str) -> None:
    """Only assistant (or role-less) deltas contribute answer text."""
    assert events_from_body(chunk({"role": role, "content": "not for the user"})) == []


@pytest.mark.parametrize(
    ("content", "text"),
    [
        pytest.param([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}], "Hello", id="parts"),
        pytest.param(
            [
                {"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {"type": "text", "text": 5},
                "loose string",
                {"text": "untyped"},
                {"type": "text", "text": "b"},
            ],
            "ab",
            id="non-text-parts-skipped",
        ),
        pytest.param([], "", id="empty-list"),
        pytest.param(None, "", id="null"),
        pytest.param(42, "", id="number"),
    ],
)
def test_content_as_list_of_text_parts(content: Any, text: str) -> None:
    """List content joins its text parts; anything that is not text contributes nothing."""
    events = events_from_body(chunk({"role": "assistant", "content": content}))
    assert events == ([TextDelta(text)] if text else [])


def test_finish_chunk_with_text_yields_text_before_finish() -> None:
    """A closing chunk that also carries text yields that text first, then the Finish."""
    body = chunk({"role": "assistant", "content": "end."}, finish_reason="stop", usage=FINAL_USAGE)
    assert events_from_body(body) == [TextDelta("end."), Finish("stop", Usage(690, 36, 726))]


@pytest.mark.parametrize("reason", ["stop", "sensitive", "tool_fail", "length"])
def test_finish_reason_is_passed_through(reason: str) -> None:
    """Whatever finish_reason the server sends is the Finish reason."""
    body = chunk({"role": "assistant", "content": ""}, finish_reason=reason, usage=FINAL_USAGE)
    assert events_from_body(body) == [Finish(reason, Usage(690, 36, 726))]


@pytest.mark.parametrize("reason", [None, ""], ids=["null", "empty"])
def test_blank_finish_reason_is_no_finish(reason: str | None) -> None:
    """A null or empty finish_reason mid-stream does not end the answer."""
    body = chunk({"role": "assistant", "content": "x"})
    body["choices"][0]["finish_reason"] = reason
    assert events_from_body(body) == [TextDelta("x")]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(FINAL_USAGE, Usage(690, 36, 726), id="all-ints"),
        pytest.param({"total_tokens": 7}, Usage(0, 0, 7), id="partial-ints"),
        pytest.param({"prompt_tokens": "690", "completion_tokens": 36}, Usage(0, 36, 0), id="mixed"),
        pytest.param({"prompt_tokens": "690", "total_tokens": 1.5}, None, id="no-ints"),
        pytest.param({}, None, id="empty"),
        pytest.param("690", None, id="not-object"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_usage_is_parsed_only_from_ints(usage: Any, expected: Usage | None) -> None:
    """Finish.usage keeps only integer counts and is None when there are none."""
    body = chunk({"role": "assistant", "content": ""}, finish_reason="stop")
    if usage is None:
        del body["usage"]
    else:
        body["usage"] = usage
    assert events_from_body(body) == [Finish("stop", expected)]


def test_unknown_fields_are_ignored() -> None:
    """Fields the doc does not describe change nothing."""
    body = chunk(
        {"role": "assistant", "content": "hi", "reasoning_content": "hmm", "novel": {"x": [1]}},
        finish_reason="stop",
        usage={**FINAL_USAGE, "cached_tokens": 3},
        trace_id="t-1",
        object="chat.completion.chunk",
    )
    body["choices"][0]["index"] = 0
    body["choices"][0]["logprobs"] = None
    assert events_from_body(body) == [TextDelta("hi"), Finish("stop", Usage(690, 36, 726))]


def test_body_without_choices_or_error_is_empty() -> None:
    """A chunk with neither choices nor an error field is a no-op, not an error."""
    assert events_from_body({"id": "x", "created": 1, "usage": ZERO_USAGE}) == []


def test_only_the_first_choice_counts() -> None:
    """The API documents one choice; extra choices are not merged into the answer."""
    body = chunk({"role": "assistant", "content": "one"})
    body["choices"].append({"delta": {"role": "assistant", "content": "two"}})
    assert events_from_body(body) == [TextDelta("one")]


# --- whole (non-stream) answers ---------------------------------------------------------------


def test_documented_non_stream_answer() -> None:
    """A whole answer yields message.content once and never the tool output from its steps."""
    answer = "今天北京晴，最高 5°C。"
    body = {
        "id": "3f9c1e0b7a2d4c6e8f0a1b2c3d4e5f60",
        "created": 1735689600,
        "choices": [{
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": answer,
                "steps": [
                    {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL], "time_cost": 820},
                    {"role": "tool", "tool_call_id": "call_01", "content": TOOL_OUTPUT, "time_cost": 640},
                    {"role": "assistant", "content": answer, "time_cost": 1210},
                ],
            },
        }],
        "assistant_id": "2046615110539962176",
        "usage": FINAL_USAGE,
    }
    assert events_from_body(body) == [TextDelta(answer), Finish("stop", Usage(690, 36, 726))]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"error": {"message": "invalid appkey"}}, "invalid appkey", id="openai-style"),
        pytest.param({"code": 1, "msg": "assistant not published"}, "assistant not published", id="code-msg"),
        pytest.param({"message": "quota exhausted"}, "quota exhausted", id="message"),
        pytest.param({"error": "denied"}, "denied", id="error-string"),
        pytest.param(
            {"error": {"code": 500, "message": "upstream failed"}}, "upstream failed", id="code-in-error"
        ),
        pytest.param({"code": 40001}, "40001", id="bare-code"),
    ],
)
def test_error_object_without_choices_raises(body: dict[str, Any], message: str) -> None:
    """An error object in place of choices raises AgentProtocolError carrying the server's message."""
    with pytest.raises(AgentProtocolError) as info:
        parse_payload(json.dumps(body))
    assert info.value.detail == message
    assert info.value.status is None


@pytest.mark.parametrize("data", ["[1, 2]", '"keepalive"', "42", "null", "true", '[{"error": "x"}]'])
def test_payload_that_is_not_an_object_is_skipped(data: str) -> None:
    """JSON that is not an object (a keep-alive, a number, a list) yields no event and no error."""
    assert parse_payload(data) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"type": "ping"}, id="ping"),
        pytest.param({"event": "keepalive", "ts": 1}, id="keepalive-object"),
        pytest.param({"id": "x", "choices": None}, id="null-choices"),
        pytest.param({"code": 0, "msg": "ok"}, id="success-envelope"),
        pytest.param({"code": "0", "message": "success"}, id="success-envelope-string-code"),
        pytest.param({"error": None}, id="null-error"),
        pytest.param({"error": {}}, id="empty-error"),
    ],
)
def test_object_that_is_neither_answer_nor_error_is_skipped(body: dict[str, Any]) -> None:
    """An object with no choices and no failure in it (pings, ``{}``, a code-0 envelope) yields no event."""
    assert events_from_body(body) == []


@pytest.mark.parametrize("data", ["not json", "", "{", "[DONE", "{'single': 'quotes'}"])
def test_non_json_raises_value_error(data: str) -> None:
    """A payload that is not JSON raises ValueError, for the caller to skip."""
    with pytest.raises(ValueError, match=r".") as info:
        parse_payload(data)
    assert not isinstance(info.value, AgentProtocolError)


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("body", "raw", "detail"),
    [
        pytest.param({"error": {"message": "m"}}, "", "m", id="error.message"),
        pytest.param({"error": {"msg": "m2"}}, "", "m2", id="error.msg"),
        pytest.param({"error": {"code": 42}}, "", "42", id="error.code"),
        pytest.param({"error": {"message": "inner"}, "message": "outer"}, "", "inner", id="error-first"),
        pytest.param({"message": "top"}, "", "top", id="message"),
        pytest.param({"msg": "short"}, "", "short", id="msg"),
        pytest.param({"message": "a", "msg": "b"}, "", "a", id="message-before-msg"),
        pytest.param({"error": "plain"}, "", "plain", id="error-string"),
        pytest.param({"code": 1001}, "", "1001", id="code"),
        pytest.param({"msg": "x", "code": 1}, "", "x", id="msg-before-code"),
        pytest.param({"other": 1}, '{"other": 1}', '{"other": 1}', id="unknown-dict-uses-raw"),
        pytest.param(None, "Service Unavailable", "Service Unavailable", id="plain-text"),
        pytest.param(None, NGINX_502, "502 Bad Gateway 502 Bad Gateway nginx", id="html"),
        pytest.param(None, "", "no details", id="nothing"),
    ],
)
def test_error_detail_picks_the_most_telling_message(body: Any, raw: str, detail: str) -> None:
    """error_detail prefers error.message, then message/msg/error/code, else the tag-free raw text."""
    assert error_detail(body, raw) == detail


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("x" * 1000, id="plain"),
        pytest.param("<div>" + "word " * 300 + "</div>", id="html"),
        pytest.param("<p>" * 500 + "tail", id="many-tags"),
    ],
)
def test_error_detail_from_raw_text_is_short_and_tag_free(raw: str) -> None:
    """Raw fallback text is at most 200 characters and holds no HTML tags."""
    detail = error_detail(None, raw)
    assert 0 < len(detail) <= 200
    assert "<" not in detail and ">" not in detail


def test_error_detail_keeps_the_start_of_raw_text() -> None:
    """The raw fallback is the beginning of the text, whitespace collapsed."""
    raw = "<h1>Gateway   Time-out</h1>\n<p>" + "z" * 500 + "</p>"
    assert error_detail(None, raw).startswith("Gateway Time-out z")


# --- property ---------------------------------------------------------------------------------


def _encode(text: str, style: int) -> str:
    """One text increment as a stream payload, in one of the shapes the parser must accept."""
    if style == 0:
        delta: dict[str, Any] = {"role": "assistant", "content": text, "time_cost": 0}
    elif style == 1:
        delta = {"content": text}
    else:
        delta = {"role": "assistant", "content": [{"type": "text", "text": text}]}
    return json.dumps(chunk(delta), ensure_ascii=style == 0)


@given(st.lists(st.tuples(st.text(), st.integers(min_value=0, max_value=2)), max_size=20))
def test_stream_of_text_chunks_concatenates_back(pieces: list[tuple[str, int]]) -> None:
    """Any text, split into chunks and encoded as stream payloads, parses back to the same text."""
    events = [e for text, style in pieces for e in parse_payload(_encode(text, style))]
    assert all(isinstance(e, TextDelta) and e.text for e in events)
    assert text_of(events) == "".join(text for text, _ in pieces)


@pytest.mark.parametrize(
    ("function", "kind"),
    [
        pytest.param({"name": "weather", "type": "tool"}, "tool", id="tool"),
        pytest.param({"name": "search", "type": "plugin"}, "plugin", id="plugin"),
        pytest.param({"name": "faq", "type": "knowledge"}, "knowledge", id="knowledge"),
        pytest.param({"name": "faq", "type": "知识库"}, "knowledge", id="knowledge-zh"),
        pytest.param({"name": "order", "type": "workflow"}, "workflow", id="workflow"),
        pytest.param({"name": "x", "type": 3}, "tool", id="odd-type"),
        pytest.param({"name": "x"}, "tool", id="no-type"),
    ],
)
def test_tool_call_kind_comes_from_its_type(function: dict[str, Any], kind: str) -> None:
    """What the status line says depends on the step's kind, read from its ``type``."""
    call = {"id": "c", "type": "function", "function": function}
    events = events_from_body(chunk({"role": "assistant", "content": "", "tool_calls": [call]}))
    assert events == [ToolStep(function["name"], kind)]


@pytest.mark.parametrize(
    ("delta", "failed"),
    [
        pytest.param({"role": "tool", "content": '{"error": {"message": "timed out"}}'}, True, id="error"),
        pytest.param({"role": "tool", "content": "{}", "status": "failed"}, True, id="status"),
        pytest.param({"role": "tool", "content": '{"error": null, "ok": 1}'}, False, id="null-error"),
        pytest.param({"role": "tool", "content": '{"weather": "sunny"}'}, False, id="result"),
        pytest.param({"role": "tool", "content": "{not json"}, False, id="broken-json"),
    ],
)
def test_tool_result_reports_failure(delta: dict[str, Any], failed: bool) -> None:
    """A tool's result with an error (or a failed status) is a failed step, said plainly to the user."""
    assert events_from_body(chunk(delta)) == [ToolStep(None, done=True, failed=failed)]
