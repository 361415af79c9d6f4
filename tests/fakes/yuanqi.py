"""A local fake of the Tencent Yuanqi agent chat-completions API (see docs/yuanqi-api.md).

It speaks the documented wire format on 127.0.0.1: request validation as the doc describes it,
SSE streams shaped like section 4, non-stream JSON shaped like section 3, and scriptable failure
modes. Each request pops the next scripted behaviour (FIFO), or falls back to ``default``.

    async with FakeYuanqi() as fake:
        fake.script(Stream(["Hel", "lo"]), HttpError(429, retry_after=1))
        ...  # point the client at fake.url with YUANQI_TOKEN / ASSISTANT_ID
        await fake.wait_for(lambda: len(fake.requests) == 2)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

YUANQI_TOKEN = "yq-test-appkey-not-real"
ASSISTANT_ID = "2046615110539962176"
PATH = "/openapi/v1/agent/chat/completions"
MAX_MESSAGES = 40
# Content of the role="tool" delta emitted by Stream(tool_call=...); a client must never show it.
TOOL_OUTPUT = '{"tool_output": "TOOL-OUTPUT-MUST-NOT-BE-SHOWN"}'
# Content of the role="tool" delta of a ToolCall(fail=True).
TOOL_ERROR = json.dumps({"error": {"message": "tool timed out"}})
TOOL_KINDS = ("tool", "plugin", "knowledge", "workflow")  # ToolCall.kind: function.type
# How often a running answer checks whether the client has closed the connection.
CLOSE_POLL = 0.01

_PART_TYPES = frozenset({"text", "image_url", "file_url"})
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Gate:
    """A point a behaviour waits at until the test calls ``open()``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.waiting = False  # True while the server is blocked on this gate

    def open(self) -> None:
        self._event.set()

    @property
    def is_open(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


# --- behaviours -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A Stream item written as is (an SSE event such as ``data: "keepalive"``), after ``delay`` s."""

    event: str
    delay: float = 0.0


@dataclass(frozen=True)
class ToolCall:
    """A Stream item: one tool step, anywhere among the text chunks.

    The assistant delta announcing the call (``function.type`` is ``kind``: "tool", "plugin",
    "knowledge" or "workflow"), then after ``delay`` s the ``role: "tool"`` delta with its output:
    :data:`TOOL_OUTPUT`, or with ``fail`` :data:`TOOL_ERROR` and ``"status": "failed"``.
    """

    name: str
    kind: str = "tool"
    fail: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class Stream:
    """200 SSE stream: [extra_events] [tool deltas] text chunks (or Raw events, ToolCall steps)
    [finish chunk] [DONE]. ``tool_call="name"`` is a ``ToolCall("name")`` before the chunks."""

    chunks: Sequence[str | Gate | Raw | ToolCall]
    finish_reason: str | None = "stop"
    usage: dict[str, int] | None = None  # None -> {"prompt_tokens": 10, "completion_tokens": n..}
    done: bool = True
    crlf: bool = False
    space: bool = True
    tool_call: str | None = None
    chunk_delay: float = 0.0
    final_text_in_finish_chunk: str = ""
    extra_events: Sequence[str] = ()


@dataclass(frozen=True)
class Json:
    """Non-stream JSON answer shaped like the doc's section 3."""

    text: str
    finish_reason: str = "stop"
    status: int = 200


@dataclass(frozen=True)
class HttpError:
    status: int
    body: str = '{"error": {"message": "boom"}}'
    content_type: str = "application/json"
    retry_after: int | None = None


@dataclass(frozen=True)
class Hang:
    """Send nothing at all until the gate opens (or the client leaves), then close."""

    gate: Gate | None = None


@dataclass(frozen=True)
class HangAfter:
    """Send headers and these chunks, then keep the connection open and silent."""

    chunks: Sequence[str]


@dataclass(frozen=True)
class Disconnect:
    """Send headers and these chunks, then drop the connection without [DONE]."""

    chunks: Sequence[str] = ()


@dataclass(frozen=True)
class StreamError:
    """200 SSE with these chunks, then a data event holding an error object and no choices."""

    chunks: Sequence[str] = ()
    error: dict[str, Any] = field(
        default_factory=lambda: {"error": {"code": 500, "message": "upstream failed"}}
    )


Behaviour = Stream | Json | HttpError | Hang | HangAfter | Disconnect | StreamError


# --- requests -------------------------------------------------------------------------------


class Headers(dict[str, str]):
    """Header dict with lower-cased keys and case-insensitive lookups."""

    def __init__(self, items: Mapping[str, str]) -> None:
        super().__init__((k.lower(), v) for k, v in items.items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class Recorded:
    """One request as the fake received it."""

    headers: dict[str, str]
    body: dict[str, Any] | None
    at: float
    problems: list[str] = field(default_factory=list)
    #: clock() right after the first text delta was written (None if no text was sent).
    first_text_at: float | None = None
    #: clock() once the answer was complete: after the stream's last byte, or the error answer.
    last_byte_at: float | None = None
    #: clock() when the client closed the connection before the answer was complete (None if
    #: it never did); seen within ~CLOSE_POLL s, even while the answer is paused.
    closed_at: float | None = None
    #: Set once the fake has written all it meant to (or drops the connection itself): a close
    #: after that is not the client leaving early.
    _finished: bool = field(default=False, repr=False, compare=False)

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = (self.body or {}).get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def last_user_text(self) -> str:
        if not self.messages:
            return ""
        return "".join(
            str(part.get("text", ""))
            for part in _parts(self.messages[-1])
            if part.get("type") == "text"
        )


def _parts(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def validate(headers: Mapping[str, str], body: Any, token: str, assistant_id: str) -> list[str]:
    """Every way the request departs from the doc; "auth" and "x-source" are fixed names."""
    problems: list[str] = []
    if headers.get("authorization") != f"Bearer {token}":
        problems.append("auth")
    if headers.get("x-source") != "openapi":
        problems.append("x-source")
    if not isinstance(body, dict):
        return [*problems, "body must be a JSON object"]
    if body.get("assistant_id") != assistant_id:
        problems.append(f"assistant_id must be the string {assistant_id!r}")
    if not isinstance(body.get("user_id"), str) or not body["user_id"]:
        problems.append("user_id must be a non-empty string")
    if "stream" in body and not isinstance(body["stream"], bool):
        problems.append("stream must be a bool")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages must be a non-empty list"]
    if len(messages) > MAX_MESSAGES:
        problems.append(f"messages has {len(messages)} items, max {MAX_MESSAGES}")
    for i, message in enumerate(messages):
        problems.extend(_message_problems(i, message))
    if len(messages) % 2 == 0:
        problems.append("messages must end with a user message")
    return problems


def _message_problems(i: int, message: Any) -> list[str]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        return [f"{where} must be an object"]
    expected = "user" if i % 2 == 0 else "assistant"
    problems = []
    if message.get("role") != expected:
        problems.append(f"{where}.role must be {expected!r} (got {message.get('role')!r})")
    content = message.get("content")
    if not isinstance(content, list) or not content:
        return [*problems, f"{where}.content must be a non-empty list of parts"]
    for j, part in enumerate(content):
        problem = _part_problem(part)
        if problem:
            problems.append(f"{where}.content[{j}] {problem}")
    return problems


def _part_problem(part: Any) -> str | None:
    if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
        return f"must be an object with type in {sorted(_PART_TYPES)}"
    kind = part["type"]
    if kind == "text":
        ok = isinstance(part.get("text"), str) and bool(part["text"])
        return None if ok else "text must be a non-empty string"
    inner = part.get(kind)
    keys = ("url",) if kind == "image_url" else ("type", "url")
    if isinstance(inner, dict) and all(isinstance(inner.get(k), str) and inner[k] for k in keys):
        return None
    return f"{kind} must be an object with string {' and '.join(keys)}"


def echo(rec: Recorded) -> Behaviour:
    """Default behaviour: "Echo: <last user text>" in ~8-character chunks (JSON if not stream)."""
    text = f"Echo: {rec.last_user_text}"
    if (rec.body or {}).get("stream") is not True:
        return Json(text)
    return Stream([text[i : i + 8] for i in range(0, len(text), 8)])


async def fetch_image_parts(rec: Recorded) -> list[bytes]:
    """Bytes of every image in the last user message (data: URLs or loopback http URLs)."""
    user_messages = [m for m in rec.messages if isinstance(m, dict) and m.get("role") == "user"]
    urls = []
    for part in _parts(user_messages[-1]) if user_messages else []:
        if part.get("type") == "image_url":
            urls.append(part["image_url"]["url"])
        elif part.get("type") == "file_url" and part["file_url"].get("type") == "image":
            urls.append(part["file_url"]["url"])
    return [await _load_url(url) for url in urls]


async def _load_url(url: str) -> bytes:
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError(f"not a base64 data URL: {url[:60]!r}")
        return base64.b64decode(payload, validate=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(f"refusing to fetch non-loopback image URL: {url[:80]!r}")
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        resp.raise_for_status()
        return await resp.read()


# --- wire format ----------------------------------------------------------------------------

_ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


class _Sse:
    """Writes Yuanqi-shaped SSE events to one prepared response."""

    def __init__(
        self,
        resp: web.StreamResponse,
        assistant_id: str,
        *,
        crlf: bool,
        space: bool,
        on_write: Callable[[], Awaitable[None]],
        rec: Recorded | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resp = resp
        self.rec = rec
        self.clock = clock
        self.assistant_id = assistant_id
        self.nl = "\r\n" if crlf else "\n"
        self.prefix = "data: " if space else "data:"
        self.on_write = on_write
        self.id = uuid.uuid4().hex
        self.created = int(time.time())
        self.tool_calls = 0

    async def raw(self, text: str) -> None:
        await self.resp.write((text + self.nl + self.nl).encode())
        await self.on_write()

    async def data(self, payload: str) -> None:
        await self.raw(self.prefix + payload)

    async def chunk(
        self,
        delta: dict[str, Any],
        *,
        finish_reason: str | None = None,
        usage: dict[str, int] = _ZERO_USAGE,
    ) -> None:
        choice: dict[str, Any] = {"delta": {"role": "assistant", **delta}}
        if finish_reason is not None:
            choice = {"finish_reason": finish_reason, **choice}
        event = {
            "id": self.id,
            "created": self.created,
            "choices": [choice],
            "assistant_id": self.assistant_id,
            "usage": usage,
        }
        await self.data(json.dumps(event, ensure_ascii=False))

    async def text(self, content: str) -> None:
        await self.chunk({"content": content, "time_cost": 0})
        if self.rec is not None and self.rec.first_text_at is None:
            self.rec.first_text_at = self.clock()

    async def tool_call(self, step: ToolCall | str) -> None:
        if isinstance(step, str):
            step = ToolCall(step)
        self.tool_calls += 1
        call_id = f"call_{self.tool_calls:02d}"
        function = {
            "name": step.name,
            "desc": f"fake {step.name}",
            "type": step.kind,
            "arguments": "{}",
        }
        call = {"id": call_id, "type": "function", "function": function}
        await self.chunk({"content": "", "tool_calls": [call], "time_cost": 820})
        if step.delay:
            await asyncio.sleep(step.delay)
        result: dict[str, Any] = {
            "role": "tool",
            "content": TOOL_ERROR if step.fail else TOOL_OUTPUT,
            "tool_call_id": call_id,
            "time_cost": 640,
        }
        if step.fail:
            result["status"] = "failed"
        await self.chunk(result)


def _json_body(b: Json, assistant_id: str) -> dict[str, Any]:
    usage = _usage(10, max(1, len(b.text) // 4))
    step = {"role": "assistant", "content": b.text, "time_cost": 1210, "usage": usage}
    message = {"role": "assistant", "content": b.text, "steps": [step]}
    return {
        "id": uuid.uuid4().hex,
        "created": int(time.time()),
        "choices": [{"finish_reason": b.finish_reason, "message": message}],
        "assistant_id": assistant_id,
        "usage": usage,
    }


# --- the server -----------------------------------------------------------------------------


class _Stopped(ConnectionError):
    """Raised inside a waiting behaviour when the fake shuts down; the connection is dropped."""


class FakeYuanqi:
    def __init__(
        self,
        token: str = YUANQI_TOKEN,
        assistant_id: str = ASSISTANT_ID,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_concurrent: int | None = None,
    ) -> None:
        self.token = token
        self.assistant_id = assistant_id
        self.max_concurrent = max_concurrent
        self.default: Behaviour | Callable[[Recorded], Behaviour] = echo
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.peak_concurrency = 0
        self.rejected_concurrency = 0
        self.url = ""
        self._clock = clock
        self._queue: deque[Behaviour] = deque()
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def script(self, *behaviours: Behaviour) -> None:
        self._queue.extend(behaviours)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # base64 images are big
        app.router.add_post(PATH, self._handle)
        # handler_cancellation: a client hanging up cancels the handler (ends Hang/HangAfter).
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{PATH}"

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeYuanqi:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,
    ) -> None:
        """Wait until predicate() holds; re-checked on every arrival, chunk and request end."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise AssertionError(f"condition not met within {timeout}s") from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = self._clock()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = Headers(request.headers)
        rec = Recorded(
            headers,
            body if isinstance(body, dict) else None,
            at,
            validate(headers, body, self.token, self.assistant_id),
        )
        self.requests.append(rec)
        busy = self.max_concurrent is not None and self.in_flight >= self.max_concurrent
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        try:
            await self._notify()
            rejecting = [p for p in rec.problems if p != "x-source"]
            if "auth" in rejecting:
                return _error_response(401, "invalid appkey")
            if rejecting:
                return _error_response(400, rejecting[0])
            if busy:
                self.rejected_concurrency += 1
                return _error_response(429, "too many concurrent requests")
            watcher = asyncio.create_task(self._watch_close(request, rec))
            try:
                return await self._run(self._next_behaviour(rec), request, rec)
            except asyncio.CancelledError:  # handler_cancellation: the client hung up
                self._client_left(rec)
                raise
            finally:
                watcher.cancel()
        finally:
            rec._finished = True
            rec.last_byte_at = self._clock()
            self.in_flight -= 1
            await self._notify()

    async def _watch_close(self, request: web.Request, rec: Recorded) -> None:
        """Record (in ``rec.closed_at``) the client closing the connection before the end."""
        while not rec._finished:
            transport = request.transport
            if transport is None or transport.is_closing():
                if self._client_left(rec):
                    await self._notify()
                return
            await asyncio.sleep(CLOSE_POLL)

    def _client_left(self, rec: Recorded | None) -> bool:
        """Record the client leaving early, unless the answer was over or the fake is stopping."""
        if rec is None or rec._finished or rec.closed_at is not None or self._stopping.is_set():
            return False
        rec.closed_at = self._clock()
        return True

    def _next_behaviour(self, rec: Recorded) -> Behaviour:
        if self._queue:
            return self._queue.popleft()
        return self.default(rec) if callable(self.default) else self.default

    async def _until(self, gate: Gate | None = None) -> None:
        """Block until the gate opens (forever if None) or the fake stops."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stopping.wait())]
        if gate is not None:
            waits.append(asyncio.ensure_future(gate.wait()))
            gate.waiting = True
            await self._notify()
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            if gate is not None:
                gate.waiting = False
        if self._stopping.is_set():
            raise _Stopped

    async def _open_sse(
        self,
        request: web.Request,
        *,
        crlf: bool = False,
        space: bool = True,
        rec: Recorded | None = None,
    ) -> _Sse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await resp.prepare(request)
        return _Sse(
            resp,
            self.assistant_id,
            crlf=crlf,
            space=space,
            on_write=self._notify,
            rec=rec,
            clock=self._clock,
        )

    async def _run(
        self, b: Behaviour, request: web.Request, rec: Recorded | None = None
    ) -> web.StreamResponse:
        if isinstance(b, Json):
            return web.json_response(
                _json_body(b, self.assistant_id),
                status=b.status,
                dumps=lambda o: json.dumps(o, ensure_ascii=False),
            )
        if isinstance(b, HttpError):
            headers = {"Content-Type": b.content_type}
            if b.retry_after is not None:
                headers["Retry-After"] = str(b.retry_after)
            return web.Response(status=b.status, body=b.body.encode(), headers=headers)
        if isinstance(b, Hang):
            with contextlib.suppress(_Stopped):
                await self._until(b.gate)
            return self._abort(request, rec)
        try:
            if isinstance(b, Stream):
                return await self._stream(b, request, rec)
            sse = await self._open_sse(request, rec=rec)
            for text in b.chunks:
                await sse.text(text)
            if isinstance(b, HangAfter):
                await self._until()
            elif isinstance(b, Disconnect):
                return self._abort(request, rec)
            else:
                await sse.data(json.dumps(b.error, ensure_ascii=False))
            return await self._finish(sse, rec)
        except _Stopped:  # the fake is stopping
            return self._abort(request, rec)
        except ConnectionError:  # the client went away mid-write
            self._client_left(rec)
            return self._abort(request, rec)

    async def _stream(
        self, b: Stream, request: web.Request, rec: Recorded | None = None
    ) -> web.StreamResponse:
        sse = await self._open_sse(request, crlf=b.crlf, space=b.space, rec=rec)
        for line in b.extra_events:
            await sse.raw(line)
        if b.tool_call is not None:
            await sse.tool_call(b.tool_call)
        texts = 0
        for item in b.chunks:
            if isinstance(item, Gate):
                await self._until(item)
                continue
            if isinstance(item, Raw):
                await asyncio.sleep(item.delay)
                await sse.raw(item.event)
                continue
            if isinstance(item, ToolCall):
                await sse.tool_call(item)
                continue
            if texts and b.chunk_delay:
                await asyncio.sleep(b.chunk_delay)
            await sse.text(item)
            texts += 1
        if b.finish_reason is not None:
            usage = b.usage if b.usage is not None else _usage(10, texts)
            await sse.chunk(
                {"content": b.final_text_in_finish_chunk, "time_cost": 1210},
                finish_reason=b.finish_reason,
                usage=usage,
            )
        if b.done:
            await sse.data("[DONE]")
        return await self._finish(sse, rec)

    @staticmethod
    async def _finish(sse: _Sse, rec: Recorded | None) -> web.StreamResponse:
        """End the body normally: the client may close the connection from now on."""
        if rec is not None:
            rec._finished = True
        await sse.resp.write_eof()
        return sse.resp

    @staticmethod
    def _abort(request: web.Request, rec: Recorded | None = None) -> web.StreamResponse:
        """Close the socket (after flushing what was written); the client sees a broken body."""
        if rec is not None:
            rec._finished = True  # the fake hangs up: not the client leaving
        if request.transport is not None:
            request.transport.close()
        return web.StreamResponse()
