"""PTB's HTTP transport over aiohttp, and a variant counting Bot API calls and 429s.

httpx cost about 90% of each Bot API call's CPU; aiohttp, which the bot already uses for the agent,
costs far less. The requests are HTTPXRequest's (HTTP/1.1, no proxy, PTB's User-Agent, multipart
when there are files, no redirects followed), but for the body of a call without files: one JSON
object (``application/json``, which the Bot API takes as well), not a urlencoded form of JSON values.
Percent-encoding an answer's text cost about 0.3 ms a call, orjson a hundredth of that. The errors
are HTTPXRequest's: a timeout is TimedOut, any other network failure NetworkError, each raised from
the aiohttp exception.

Timeouts, by PTB's names: ``connect`` bounds opening a connection (DNS, TCP, TLS); ``read`` each
wait for the answer's bytes, counted from the moment the body is written; ``pool`` the wait for
one of ``connection_pool_size`` requests in flight. aiohttp has no write timeout: PTB's
``write_timeout`` is accepted and unused (the bot sends small bodies that fit the socket buffer).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import aiohttp
import orjson
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.ops.metrics import Metrics

#: HTTPXRequest's message, word for word.
POOL_TIMEOUT_MESSAGE: Final = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent to "
    "Telegram. Consider adjusting the connection pool size or the pool timeout."
)
_HIDDEN = "<url>"  # the URL holds the bot token
_JSON: Final = {"User-Agent": BaseRequest.USER_AGENT, "Content-Type": "application/json"}
_PLAIN: Final = {"User-Agent": BaseRequest.USER_AGENT}
_NO_CONTENT_TYPE: Final = frozenset({"Content-Type"})  # an empty body goes without one, as with httpx


class PoolTimeout(TimeoutError):
    """No slot freed up within the pool timeout; nothing was sent (the ``__cause__`` of a TimedOut)."""


#: The ``__cause__`` of a TimedOut or NetworkError raised before Telegram could have the request:
#: the connection was never made. Everything else may have reached Telegram.
NOT_SENT: Final = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, PoolTimeout)


class AiohttpRequest(BaseRequest):
    """A BaseRequest with one aiohttp session, opened on first use and closed by ``shutdown``."""

    def __init__(
        self, connection_pool_size: int = 256, read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0, pool_timeout: float | None = 1.0,
    ) -> None:
        self._size = connection_pool_size
        self._read = read_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(connection_pool_size)  # replaced with the session

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        self._open()

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._size)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
            self._slots = asyncio.Semaphore(self._size)  # bound to this session's event loop
        return self._session, self._slots

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session, slots = self._open()
        connect = _given(connect_timeout, self._connect)
        timeout = aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect, sock_read=_given(read_timeout, self._read)
        )
        await _take(slots, _given(pool_timeout, self._pool))
        try:
            async with session.request(
                method, url, timeout=timeout, allow_redirects=False, **_body(request_data)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's connect and read timeouts are TimeoutErrors
            raise TimedOut from _hide(url, exc)
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {_hide(url, exc)}") from exc
        finally:
            slots.release()


def _given(value: ODVInput[float], default: float | None) -> float | None:
    """PTB's DEFAULT_NONE means the instance's default; None means no limit."""
    return default if isinstance(value, DefaultValue) else value


async def _take(slots: asyncio.Semaphore, pool_timeout: float | None) -> None:
    if not slots.locked():
        await slots.acquire()  # a slot is free: returns at once
        return
    try:
        async with asyncio.timeout(pool_timeout):
            await slots.acquire()
    except TimeoutError:
        raise TimedOut(POOL_TIMEOUT_MESSAGE) from PoolTimeout()


def _body(data: RequestData | None) -> dict[str, Any]:
    """The keyword arguments for aiohttp that send what HTTPXRequest sends."""
    if data is not None and data.contains_files:
        form = aiohttp.FormData()
        for name, value in data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in data.multipart_data.items():
            form.add_field(name, content, filename=filename, content_type=mimetype)
        return {"headers": _PLAIN, "data": form}
    params = data.parameters if data is not None else None
    if not params:  # getMe and the like, and file downloads
        return {"headers": _PLAIN, "skip_auto_headers": _NO_CONTENT_TYPE}
    return {"headers": _JSON, "data": orjson.dumps(params)}


def _hide(url: str, exc: BaseException) -> BaseException:
    """``exc`` with the URL cut out of its text and its causes' (aiohttp puts it in some messages)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.args = tuple(str(arg).replace(url, _HIDDEN) if url in str(arg) else arg for arg in link.args)
        if isinstance(link, OSError) and link.strerror and url in link.strerror:
            link.strerror = link.strerror.replace(url, _HIDDEN)
        link = link.__cause__ or link.__context__
    return exc


class CountingRequest(AiohttpRequest):
    """Counts Bot API calls by method, and the 429s Telegram answers."""

    def __init__(self, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        # The URL holds the bot token: only its last segment, the method name, is kept.
        self._metrics.telegram_calls.labels(method=url.rsplit("/", 1)[-1]).inc()
        code, payload = await super().do_request(url, method, *args, **kwargs)
        if code == 429:
            self._metrics.telegram_429.inc()
        return code, payload
