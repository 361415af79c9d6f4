"""Request bodies: encoded once, exactly as httpx would, and large ones off the event loop."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from bot.agent import client
from bot.agent.client import ENCODE_IN_THREAD_CHARS, encode_request


def body_with(chars: int) -> dict[str, Any]:
    url = "data:image/jpeg;base64," + "A" * chars
    return {"assistant_id": "a", "user_id": "u", "stream": True,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}


@pytest.mark.parametrize(("chars", "in_thread"), [(100, False), (ENCODE_IN_THREAD_CHARS, True)],
                         ids=["small", "large"])
async def test_large_bodies_are_encoded_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, chars: int, in_thread: bool
) -> None:
    """A body past the threshold is JSON-encoded off the loop's thread; a small one on it, unchanged."""
    threads: list[int] = []
    encode = client.encode_body

    def spy(body: dict[str, Any]) -> bytes:
        threads.append(threading.get_ident())
        return encode(body)

    monkeypatch.setattr(client, "encode_body", spy)
    body = body_with(chars)
    encoded = await encode_request(body)
    assert json.loads(encoded) == body
    assert (threads[0] != threading.get_ident()) is in_thread


async def test_encoding_matches_httpx() -> None:
    """The pre-encoded bytes are what httpx's json= sends (compact, UTF-8, not ASCII-escaped)."""
    body = {"messages": [{"role": "user", "content": "你好 \u00e9"}], "stream": True}
    expected = httpx.Request("POST", "http://127.0.0.1/", json=body).content
    assert await encode_request(body) == expected
