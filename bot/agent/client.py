"""The Yuanqi agent client: builds requests, reads the SSE stream, maps failures to AgentError.

Retries (429, 5xx, network errors; backoff with jitter) happen only before the first event has
been handed to the caller, so nothing the user has already seen is ever repeated.

Three clocks bound a call: the first event must come within ``first_byte_timeout``; after it,
the stream may not fall silent (no event of any kind, keep-alives included) for
``idle_timeout``; and the whole answer must end within ``total_timeout``.

The stream is read with aiohttp's client (already the bot's HTTP server, and the Bot API's
transport, ``bot.tg.http``): on this answer path it costs about 0.2 ms of CPU per network read
where httpx costs about 0.5 ms (see the README's performance section).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bot.agent.events import AgentEvent, Finish, TextDelta, error_detail, events_from_body
from bot.agent.sse import SseSplitter
from bot.errors import (
    AgentError,
    AgentProtocolError,
    AgentRejected,
    AgentTimeout,
    AgentUnavailable,
)

log = logging.getLogger(__name__)

MAX_BACKOFF = 20.0
#: Once the answer's text has begun, let the next deltas gather this long after each read of the
#: stream, unless the stream ends first: a read costs the same for one delta as for twenty, and
#: the end of the answer is read at once. (0.5 s saved no measurable CPU in load50 but showed some
#: first words and final texts up to 0.4 s late; a group answer held back until GROUP_HOLD_CHARS
#: shows when a read finds it long enough, and 0.25 s put that past the 250 ms target.) The pause
#: is not idle time: the idle and total timeouts are checked around the reads alone.
READ_PAUSE = 0.2
#: Request bodies estimated larger than this are JSON-encoded in a worker thread.
ENCODE_IN_THREAD_CHARS = 256 * 1024


@dataclass(frozen=True, slots=True)
class AgentConfig:
    url: str
    token: str
    assistant_id: str
    first_byte_timeout: float
    total_timeout: float
    max_retries: int
    idle_timeout: float = 60.0


def build_request(assistant_id: str, user_id: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "assistant_id": str(assistant_id),
        "user_id": user_id,
        "stream": True,
        "messages": list(messages),
    }


def encode_body(body: dict[str, Any]) -> bytes:
    """The request as compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _chars(value: object) -> int:
    """A quick estimate of the JSON size of ``value`` (its strings, and a little per item)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k)) + _chars(v) + 4 for k, v in value.items())
    if isinstance(value, list):
        return sum(_chars(v) + 1 for v in value)
    return 8


async def encode_request(body: dict[str, Any]) -> bytes:
    """Encode ``body``; large ones (inline files) off the event loop, small ones at once."""
    if _chars(body) > ENCODE_IN_THREAD_CHARS:
        return await asyncio.to_thread(encode_body, body)
    return encode_body(body)


def backoff(attempt: int, rng: Callable[[], float], retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full jitter, or the server's word."""
    if retry_after is not None:
        return float(min(retry_after, MAX_BACKOFF))
    return min(MAX_BACKOFF, 0.5 * 2.0 ** (attempt - 1)) * (0.5 + rng() / 2)


class AgentClient:
    """Streams answers from one Yuanqi agent over a shared ``aiohttp.ClientSession``."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        config: AgentConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self._config = config
        self._sleep = sleep
        self._rng = rng

    async def stream_reply(
        self, user_id: str, messages: Sequence[dict[str, Any]]
    ) -> AsyncGenerator[AgentEvent, None]:
        """Yield the answer's events; the last one is always a :class:`Finish`."""
        body = await encode_request(build_request(self._config.assistant_id, user_id, messages))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.total_timeout
        attempt = 0
        while True:
            yielded = False
            try:
                async for event in self._attempt(body, deadline):
                    yielded = True
                    yield event
                return
            except _Retry as retry:
                attempt += 1
                if yielded or attempt > self._config.max_retries:
                    raise retry.error from None
                delay = backoff(attempt, self._rng, retry.after)
                if loop.time() + delay >= deadline:
                    raise retry.error from None
                log.info("agent call failed (%s); retry %d in %.1fs", retry.error, attempt, delay)
                await self._sleep(delay)

    async def _attempt(self, body: bytes, deadline: float) -> AsyncIterator[AgentEvent]:
        loop = asyncio.get_running_loop()
        first_deadline = min(deadline, loop.time() + self._config.first_byte_timeout)
        async with self._open(body, first_deadline) as response:
            content_type = response.headers.get("Content-Type", "")
            if "text/event-stream" not in content_type:
                raw = await _read(response, first_deadline)
                for event in _whole_answer(raw):
                    yield event
                return
            batches = _sse_events(response)
            saw_text = saw_event = False
            while True:
                limit, why = _wait_limit(
                    loop.time(), first_deadline if not saw_event else None, deadline,
                    self._config.idle_timeout,
                )
                try:
                    if limit <= loop.time():  # (a read of what is buffered would not time out)
                        raise TimeoutError
                    async with asyncio.timeout_at(limit):
                        batch = await anext(batches)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise AgentTimeout(why) from None
                except aiohttp.ClientError as exc:
                    error = AgentUnavailable(f"stream broke: {type(exc).__name__}")
                    raise _Retry(error) if not saw_text else error from None
                for event in batch:
                    saw_text = saw_text or isinstance(event, TextDelta)
                    saw_event = True
                    yield event
                    if isinstance(event, Finish):
                        return
                if saw_text:  # (not idle time: the agent may send meanwhile)
                    await _gather(response.content)
            if not saw_text:
                raise _Retry(AgentUnavailable("the answer stream ended empty"))
            yield Finish("stop", None)  # a stream may end without [DONE] or finish_reason

    @asynccontextmanager
    async def _open(self, body: bytes, deadline: float) -> AsyncIterator[aiohttp.ClientResponse]:
        headers = {
            "Authorization": f"Bearer {self._config.token}",
            "X-Source": "openapi",
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
        }
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._http.post(self._config.url, data=body, headers=headers)
        except aiohttp.ServerTimeoutError as exc:  # the connect timeout: before the deadline's
            raise _Retry(AgentUnavailable(f"no connection: {type(exc).__name__}")) from None
        except TimeoutError:
            raise _timeout(first=True) from None
        except aiohttp.ClientError as exc:
            raise _Retry(AgentUnavailable(f"network error: {type(exc).__name__}")) from None
        try:
            if response.status != 200:
                raw = await _read(response, deadline)
                raise _status_error(response, raw)
            yield response
        finally:
            if response.content.at_eof():
                response.release()  # read to the end: the connection is kept for the next call
            else:
                response.close()  # cut short (a stop, an error): the agent sees the stream closed


class _Retry(Exception):
    def __init__(self, error: AgentError, after: float | None = None) -> None:
        self.error = error
        self.after = after


def _timeout(first: bool) -> AgentTimeout:
    return AgentTimeout("no answer from the agent" if first else "the answer took too long")


def _wait_limit(
    now: float, first_deadline: float | None, deadline: float, idle: float
) -> tuple[float, str]:
    """When the wait for the next stream event ends, and why; ``first_deadline`` until an event came."""
    if first_deadline is not None:
        first = first_deadline < deadline
        return first_deadline, str(_timeout(first=first))
    if now + idle < deadline:
        return now + idle, f"the agent sent nothing for {idle:g}s mid-answer"
    return deadline, str(_timeout(first=False))


async def _read(response: aiohttp.ClientResponse, deadline: float) -> str:
    try:
        async with asyncio.timeout_at(deadline):
            raw = await response.read()
    except TimeoutError:
        raise _timeout(first=True) from None
    except aiohttp.ClientError as exc:
        raise _Retry(AgentUnavailable(f"network error: {type(exc).__name__}")) from None
    return raw.decode(response.get_encoding() if response.charset else "utf-8", "replace")


def _status_error(response: aiohttp.ClientResponse, raw: str) -> Exception:
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = None
    status = response.status
    detail = error_detail(body, raw)
    if status == 429 or status >= 500:
        after = _retry_after(response.headers.get("Retry-After"))
        return _Retry(AgentUnavailable(detail, status=status), after)
    return AgentRejected(detail, status=status)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _whole_answer(raw: str) -> list[AgentEvent]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise AgentProtocolError(f"unreadable answer: {error_detail(None, raw)}") from None
    events = events_from_body(body)
    if not any(isinstance(e, TextDelta | Finish) for e in events):
        raise AgentProtocolError("the answer had no text")
    if not isinstance(events[-1], Finish):
        events.append(Finish("stop", None))
    return events


async def _sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[list[AgentEvent]]:
    """The answer's events, one batch per network read (empty when a read completes nothing for
    the answer: a keep-alive still shows the agent is alive). Ends at ``[DONE]`` or EOF; an error
    object in the stream is raised after the events before it."""
    splitter = SseSplitter()
    async for chunk in response.content.iter_any():
        batch: list[AgentEvent] = []
        done = _decode(splitter.feed(chunk), batch)
        if batch or not isinstance(done, AgentProtocolError):
            yield batch
        if isinstance(done, AgentProtocolError):
            raise done
        if done:
            return
    batch = []
    done = _decode(splitter.close(), batch)
    yield batch
    if isinstance(done, AgentProtocolError):
        raise done


async def _gather(content: aiohttp.StreamReader) -> None:
    """Wait ``READ_PAUSE`` for more of the stream to arrive, or until it has all arrived (or broke:
    the next read raises that)."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(READ_PAUSE):
            await content.wait_eof()


def _decode(payloads: list[bytes], into: list[AgentEvent]) -> bool | AgentProtocolError:
    """Append the events of each ``data`` payload. True once ``[DONE]`` came, or the error an
    error object reported (the rest is ignored either way)."""
    for data in payloads:
        data = data.strip()
        if data == b"[DONE]":
            return True
        try:
            events = events_from_body(orjson.loads(data)) if data else []
        except orjson.JSONDecodeError:
            events = []
        except AgentProtocolError as exc:
            return exc
        if not events:
            log.debug("skipped a stream event with nothing for the answer (%d bytes)", len(data))
        into.extend(events)
    return False
