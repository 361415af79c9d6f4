"""Pure: Yuanqi response payloads (stream chunks or whole answers) into typed events.

Tolerant by design (see shared/docs/yuanqi-api.md): unknown fields are ignored, deltas from
tools are reported as steps but never as answer text, ``content`` may be a string or a list of
text parts, anything that is not an answer chunk (keep-alives, pings, ``{}``, numbers, lists)
yields no event, and only an error object in place of ``choices`` becomes an
:class:`AgentProtocolError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.errors import AgentProtocolError


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class TextDelta:
    """More answer text, to be appended."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolStep:
    """The agent is calling (``done`` False) or has heard back from (``done`` True) a tool,
    plugin, knowledge base or workflow; ``failed`` when the step reported an error."""

    name: str | None
    kind: str = "tool"  # "tool", "plugin", "knowledge" or "workflow"
    done: bool = False
    failed: bool = False


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str
    usage: Usage | None


AgentEvent = TextDelta | ToolStep | Finish


def parse_payload(data: str) -> list[AgentEvent]:
    """Events in one SSE ``data:`` payload. Raises ValueError when it is not JSON."""
    body = json.loads(data)
    return events_from_body(body)


def events_from_body(body: Any) -> list[AgentEvent]:
    """Events in a decoded chunk or non-stream answer; none for anything that is not an answer."""
    if not isinstance(body, dict):
        return []  # "keepalive", 42, [..], null: not ours to read
    choices = body.get("choices")
    if not isinstance(choices, list):
        if is_error(body):
            raise AgentProtocolError(error_detail(body))
        return []
    events: list[AgentEvent] = []
    for choice in choices[:1]:  # the API documents exactly one choice
        if isinstance(choice, dict):
            events.extend(_choice_events(choice, body.get("usage")))
    return events


def is_error(body: dict[str, Any]) -> bool:
    """Does this object (one without ``choices``) report a failure?

    An ``error`` field, or a ``code``, ``msg`` or ``message`` field, unless ``code`` is 0 (the
    usual success envelope, ``{"code": 0, "msg": "ok"}``, as some gateways send for pings).
    """
    if body.get("error") not in (None, "", {}):
        return True
    if body.get("code") in (0, "0"):
        return False
    return any(k in body for k in ("code", "msg", "message"))


def _choice_events(choice: dict[str, Any], usage: Any) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    delta = choice.get("delta") or choice.get("message") or {}
    if isinstance(delta, dict):
        role = delta.get("role") or "assistant"
        calls = delta.get("tool_calls")
        if calls:
            events.append(_tool_call(calls))
        if role == "tool":
            events.append(ToolStep(None, done=True, failed=_tool_failed(delta)))
        elif role == "assistant":
            text = _text_of(delta.get("content"))
            if text:
                events.append(TextDelta(text))
    reason = choice.get("finish_reason")
    if isinstance(reason, str) and reason:
        events.append(Finish(reason, _usage(usage)))
    return events


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


#: Words in a step's ``type`` (or name) that say what kind of step it is; the API documents
#: only "tool", so the others are read defensively from whatever the agent sends.
_KINDS = (("knowledge", ("knowledge", "kb", "rag", "retriev", "知识")),
          ("workflow", ("workflow", "flow", "工作流")), ("plugin", ("plugin", "插件")))


def _tool_call(calls: Any) -> ToolStep:
    """The first call's name and kind (the API shows one step at a time)."""
    function = calls[0].get("function") if isinstance(calls, list) and calls and isinstance(
        calls[0], dict) else None
    if not isinstance(function, dict):
        return ToolStep(None)
    name = function.get("name") if isinstance(function.get("name"), str) else None
    hint = f"{function.get('type') or ''} {calls[0].get('type') or ''}".lower()
    kind = next((k for k, words in _KINDS if any(w in hint for w in words)), "tool")
    return ToolStep(name.strip() or None if name else None, kind)


def _tool_failed(delta: dict[str, Any]) -> bool:
    """Did a tool's result report an error? A failed ``status``, or an ``error`` in its JSON."""
    if str(delta.get("status") or "").lower() in ("failed", "fail", "error"):
        return True
    content = delta.get("content")
    if not isinstance(content, str) or not content.lstrip().startswith("{"):
        return False
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") not in (None, "", {}, False)


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    fields = ("prompt_tokens", "completion_tokens", "total_tokens")
    values = {k: raw[k] for k in fields if isinstance(raw.get(k), int)}
    return Usage(**values) if values else None


_TAGS = re.compile(r"<[^>]+>")


def error_detail(body: Any, raw: str = "") -> str:
    """The most telling message in an error body, or the start of the raw text."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            for key in ("message", "msg", "code"):
                if error.get(key):
                    return str(error[key])[:300]
        for key in ("message", "msg", "error", "code"):
            if body.get(key):
                return str(body[key])[:300]
    text = " ".join(_TAGS.sub(" ", raw).split())
    return text[:200] or "no details"
