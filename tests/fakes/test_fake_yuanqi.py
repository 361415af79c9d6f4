"""Self-tests for the fake Yuanqi server, driven by httpx + httpx-sse like the bot."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from httpx_sse import aconnect_sse

from .yuanqi import (
    ASSISTANT_ID,
    TOOL_ERROR,
    TOOL_OUTPUT,
    YUANQI_TOKEN,
    Disconnect,
    FakeYuanqi,
    Gate,
    Hang,
    HangAfter,
    HttpError,
    Json,
    Stream,
    StreamError,
    ToolCall,
    fetch_image_parts,
)

HEADERS = {"Authorization": f"Bearer {YUANQI_TOKEN}", "X-Source": "openapi"}


def text(t: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": t}]


def body(*turns: str, stream: bool = True, **extra: Any) -> dict[str, Any]:
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": text(t)} for i, t in enumerate(turns)]
    return {
        "assistant_id": ASSISTANT_ID,
        "user_id": "tg_1",
        "stream": stream,
        "messages": messages,
        **extra,
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeYuanqi]:
    async with FakeYuanqi() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


async def sse_data(client: httpx.AsyncClient, fake: FakeYuanqi, **kw: Any) -> list[str]:
    async with aconnect_sse(
        client, "POST", fake.url, headers=dict(HEADERS), json=kw.pop("json", body("hi"))
    ) as source:
        assert source.response.status_code == 200
        return [event.data async for event in source.aiter_sse() if event.data]


async def test_stream_shape(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    fake.script(Stream(["你好", "world"], tool_call="weather", final_text_in_finish_chunk="!"))
    data = await sse_data(client, fake)
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert {e["id"] for e in events} == {events[0]["id"]} and len(events[0]["id"]) == 32
    assert all(e["assistant_id"] == ASSISTANT_ID and isinstance(e["created"], int) for e in events)
    deltas = [e["choices"][0]["delta"] for e in events]
    assert deltas[0]["tool_calls"][0]["function"]["name"] == "weather"
    assert deltas[1] == {
        "role": "tool",
        "content": TOOL_OUTPUT,
        "tool_call_id": "call_01",
        "time_cost": 640,
    }
    assert deltas[2] == {"role": "assistant", "content": "你好", "time_cost": 0}
    assert events[2]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert deltas[3]["content"] == "world"
    assert events[4]["choices"][0]["finish_reason"] == "stop"
    assert deltas[4]["content"] == "!"
    assert events[4]["usage"] == {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    assert fake.requests[0].problems == []
    assert fake.requests[0].last_user_text == "hi"


async def test_wire_variants_same_payloads(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    def strip_ids(data: list[str]) -> list[str]:
        return [
            d if d == "[DONE]" else json.dumps({**json.loads(d), "id": "", "created": 0})
            for d in data
        ]

    fake.script(
        Stream(["a", "b"]),
        Stream(["a", "b"], crlf=True, space=False),
        Stream(["a", "b"], extra_events=[": comment", "event: x", "data: not json"]),
    )
    plain = strip_ids(await sse_data(client, fake))
    variant = strip_ids(await sse_data(client, fake))
    assert variant == plain
    with_extras = await sse_data(client, fake)
    assert with_extras[0] == "not json" and strip_ids(with_extras[1:]) == plain

    fake.script(Stream(["a"], crlf=True, space=False, finish_reason=None, done=False))
    resp = await client.post(fake.url, headers=HEADERS, json=body("x"))
    assert resp.text.startswith('data:{"id"') and resp.text.endswith("}\r\n\r\n")


async def test_gate_holds_chunk(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    gate = Gate()
    fake.script(Stream(["first", gate, "second"]))
    async with aconnect_sse(
        client, "POST", fake.url, headers=dict(HEADERS), json=body("hi")
    ) as source:
        events = source.aiter_sse()
        first = await anext(events)
        assert json.loads(first.data)["choices"][0]["delta"]["content"] == "first"
        await fake.wait_for(lambda: gate.waiting)
        assert fake.in_flight == 1
        gate.open()
        rest = [e.data async for e in events]
    assert json.loads(rest[0])["choices"][0]["delta"]["content"] == "second"
    assert rest[-1] == "[DONE]"
    await fake.wait_for(lambda: fake.in_flight == 0)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (
            {**body("a"), "messages": [{"role": "user", "content": text("a")}] * 2},
            "messages[1].role must be 'assistant'",
        ),
        ({**body("a"), "user_id": ""}, "user_id must be a non-empty string"),
        ({**body("a"), "assistant_id": int(ASSISTANT_ID)}, "assistant_id must be the string"),
        (body("a", "b"), "messages must end with a user message"),
        (body(*["q"] * 41), "messages has 41 items, max 40"),
        (
            {**body("a"), "messages": [{"role": "user", "content": "plain"}]},
            "messages[0].content must be a non-empty list of parts",
        ),
        (
            {
                **body("a"),
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}
                ],
            },
            "messages[0].content[0] image_url must be an object with string url",
        ),
    ],
)
async def test_validation_rejects(
    fake: FakeYuanqi, client: httpx.AsyncClient, payload: dict[str, Any], problem: str
) -> None:
    resp = await client.post(fake.url, headers=HEADERS, json=payload)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith(problem)
    assert fake.requests[0].problems[0].startswith(problem)


async def test_auth_and_x_source(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    resp = await client.post(fake.url, headers={"Authorization": "Bearer nope"}, json=body("a"))
    assert resp.status_code == 401
    assert resp.json() == {"error": {"message": "invalid appkey"}}
    assert fake.requests[0].problems == ["auth", "x-source"]

    resp = await client.post(
        fake.url, headers={"authorization": f"Bearer {YUANQI_TOKEN}"}, json=body("a", stream=False)
    )
    assert resp.status_code == 200  # X-Source is optional: recorded, not rejected
    assert resp.json()["choices"][0]["message"]["content"] == "Echo: a"
    assert fake.requests[1].problems == ["x-source"]
    assert fake.requests[1].headers["Authorization"] == f"Bearer {YUANQI_TOKEN}"


async def test_json_and_http_error(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    fake.script(
        Json("答案", finish_reason="sensitive"),
        HttpError(503, "<html>down</html>", "text/html; charset=utf-8", retry_after=7),
    )
    resp = await client.post(fake.url, headers=HEADERS, json=body("a", stream=False))
    assert resp.headers["content-type"].startswith("application/json")
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "sensitive"
    assert choice["message"]["content"] == "答案"
    assert choice["message"]["steps"][0]["content"] == "答案"
    resp = await client.post(fake.url, headers=HEADERS, json=body("a"))
    assert (resp.status_code, resp.text, resp.headers["retry-after"]) == (
        503,
        "<html>down</html>",
        "7",
    )
    assert resp.headers["content-type"] == "text/html; charset=utf-8"


async def test_default_echo_stream(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    data = await sse_data(client, fake, json=body("q", "a", "hello there, world"))
    chunks = [json.loads(d)["choices"][0]["delta"]["content"] for d in data[:-2]]
    assert chunks == ["Echo: he", "llo ther", "e, world"]


async def test_disconnect_and_stream_error(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    fake.script(Disconnect(["partial"]), StreamError(["x"]))
    got: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with aconnect_sse(
            client, "POST", fake.url, headers=dict(HEADERS), json=body("a")
        ) as source:
            async for event in source.aiter_sse():
                got.append(json.loads(event.data)["choices"][0]["delta"]["content"])
    assert got == ["partial"]
    data = await sse_data(client, fake)
    assert json.loads(data[-1]) == {"error": {"code": 500, "message": "upstream failed"}}


async def test_hang_until_client_leaves(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    fake.script(Hang(), HangAfter(["a"]))
    with pytest.raises(httpx.ReadTimeout):
        await client.post(fake.url, headers=HEADERS, json=body("a"), timeout=0.2)
    await fake.wait_for(lambda: fake.in_flight == 0)
    async with aconnect_sse(
        client, "POST", fake.url, headers=dict(HEADERS), json=body("a")
    ) as source:
        first = await anext(source.aiter_sse())
        assert json.loads(first.data)["choices"][0]["delta"]["content"] == "a"
    await fake.wait_for(lambda: fake.in_flight == 0)

    gate = Gate()
    fake.script(Hang(gate))
    task = asyncio.create_task(client.post(fake.url, headers=HEADERS, json=body("a")))
    await fake.wait_for(lambda: gate.waiting)
    gate.open()
    with pytest.raises(httpx.RemoteProtocolError):
        await task


async def test_max_concurrent(client: httpx.AsyncClient) -> None:
    gate = Gate()
    async with FakeYuanqi(max_concurrent=2) as fake:
        fake.script(Hang(gate), Hang(gate))
        tasks = [
            asyncio.create_task(client.post(fake.url, headers=HEADERS, json=body("a")))
            for _ in range(2)
        ]
        await fake.wait_for(lambda: fake.in_flight == 2)
        resp = await client.post(fake.url, headers=HEADERS, json=body("a"))
        assert resp.status_code == 429
        assert resp.json() == {"error": {"message": "too many concurrent requests"}}
        assert (fake.rejected_concurrency, fake.peak_concurrency) == (1, 3)
        gate.open()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fake.wait_for(lambda: fake.in_flight == 0)


async def test_fetch_image_parts(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    png = b"\x89PNG fake"
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    payload = body("look")
    payload["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": url}})
    await client.post(fake.url, headers=HEADERS, json=payload)
    assert await fetch_image_parts(fake.requests[0]) == [png]

    async def serve_jpeg(_: web.Request) -> web.Response:
        return web.Response(body=b"JPEG bytes", content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/a.jpg", serve_jpeg)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        local = f"http://127.0.0.1:{runner.addresses[0][1]}/a.jpg"
        payload["messages"][0]["content"].append(
            {"type": "file_url", "file_url": {"type": "image", "url": local}}
        )
        await client.post(fake.url, headers=HEADERS, json=payload)
        assert await fetch_image_parts(fake.requests[1]) == [png, b"JPEG bytes"]
    finally:
        await runner.cleanup()

    payload["messages"][0]["content"][1]["image_url"]["url"] = "https://example.com/a.jpg"
    await client.post(fake.url, headers=HEADERS, json=payload)
    with pytest.raises(ValueError, match="non-loopback"):
        await fetch_image_parts(fake.requests[2])


async def test_tool_calls_anywhere(fake: FakeYuanqi, client: httpx.AsyncClient) -> None:
    fake.script(
        Stream(
            [
                "a",
                ToolCall("search", kind="knowledge", delay=0.1),
                "b",
                ToolCall("flow", "workflow", fail=True),
            ],
            tool_call="weather",
        )
    )
    stamps: list[float] = []
    async with aconnect_sse(
        client, "POST", fake.url, headers=dict(HEADERS), json=body("hi")
    ) as source:
        deltas = []
        async for event in source.aiter_sse():
            stamps.append(asyncio.get_running_loop().time())
            if event.data != "[DONE]":
                deltas.append(json.loads(event.data)["choices"][0]["delta"])
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert [(c["id"], c["function"]["name"], c["function"]["type"]) for c in calls] == [
        ("call_01", "weather", "tool"),
        ("call_02", "search", "knowledge"),
        ("call_03", "flow", "workflow"),
    ]
    kinds = ["call" if "tool_calls" in d else "tool" if d["role"] == "tool" else d["content"]
             for d in deltas]
    assert kinds == ["call", "tool", "a", "call", "tool", "b", "call", "tool", ""]  # "": finish
    results = [d for d in deltas if d["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == ["call_01", "call_02", "call_03"]
    assert results[0]["content"] == results[1]["content"] == TOOL_OUTPUT
    assert "status" not in results[1]
    assert results[2]["content"] == TOOL_ERROR and results[2]["status"] == "failed"
    assert json.loads(TOOL_ERROR) == {"error": {"message": "tool timed out"}}
    # the knowledge step took its 0.1 s delay (read times vary: the call may be read late)
    assert stamps[4] - stamps[3] >= 0.05
    assert fake.requests[0].closed_at is None


async def closed_early(fake: FakeYuanqi, client: httpx.AsyncClient, behaviour: Any) -> float:
    """Read the first event of ``behaviour``, hang up; how long until the fake noticed."""
    fake.script(behaviour)
    async with aconnect_sse(
        client, "POST", fake.url, headers=dict(HEADERS), json=body("hi")
    ) as source:
        events = source.aiter_sse()  # referenced: dropping it would close the response now
        await anext(events)
        await asyncio.sleep(0.05)  # the fake is now paused, not writing
        assert fake.requests[-1].closed_at is None
        left = time.monotonic()
    rec = fake.requests[-1]
    await fake.wait_for(lambda: rec.closed_at is not None, timeout=1.0)
    assert rec.closed_at is not None
    return rec.closed_at - left


@pytest.mark.parametrize(
    "behaviour",
    [
        Stream(["a", Gate(), "b"]),
        Stream(["a", "b"], chunk_delay=30),
        Stream(["a", ToolCall("slow", delay=30), "b"]),
        HangAfter(["a"]),
    ],
    ids=["gate", "chunk_delay", "tool_delay", "hang_after"],
)
async def test_closed_at_while_paused(
    fake: FakeYuanqi, client: httpx.AsyncClient, behaviour: Any
) -> None:
    assert await closed_early(fake, client, behaviour) < 0.05
    await fake.wait_for(lambda: fake.in_flight == 0)


async def test_closed_at_only_when_client_leaves_early(
    fake: FakeYuanqi, client: httpx.AsyncClient
) -> None:
    fake.script(Hang())
    left = 0.0
    with pytest.raises(httpx.ReadTimeout):
        try:
            await client.post(fake.url, headers=HEADERS, json=body("a"), timeout=0.2)
        finally:
            left = time.monotonic()
    await fake.wait_for(lambda: fake.requests[0].closed_at is not None, timeout=1.0)
    assert (fake.requests[0].closed_at or 0) - left < 0.05

    gate = Gate()
    fake.script(Stream(["a", "b"]), Disconnect(["x"]), Hang(gate), StreamError(["y"]))
    await sse_data(client, fake)  # read to the end
    with pytest.raises(httpx.RemoteProtocolError):
        await sse_data(client, fake)  # the fake hangs up, not the client
    task = asyncio.create_task(client.post(fake.url, headers=HEADERS, json=body("a")))
    await fake.wait_for(lambda: gate.waiting)
    gate.open()
    with pytest.raises(httpx.RemoteProtocolError):
        await task
    await sse_data(client, fake)
    await client.post(fake.url, headers=HEADERS, json=body("a", stream=False))
    await asyncio.sleep(0.05)
    assert [r.closed_at for r in fake.requests[1:]] == [None] * 5
