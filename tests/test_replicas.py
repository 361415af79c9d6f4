"""Several real bot processes on one Redis: webhooks spread over replicas, duplicates, kill -9, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.fakes.telegram import FakeTelegram
from tests.fakes.yuanqi import FakeYuanqi, Gate, HangAfter, Stream, fetch_image_parts
from tests.replicas import SECRET, Launch, bot_env, pid_of_holder, texts

BOT_ID = 123456
INTERRUPTED = "The answer was interrupted. Send your message again to retry."


async def test_three_replicas_answer_a_burst_once_each_in_order(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi
) -> None:
    """Two messages from each of 30 chats, spread over three replicas with re-deliveries, are
    answered exactly once, in order, with the first exchange in the second one's history, and
    never more than the configured number of agent calls at once."""
    replicas = await launch(3, YUANQI_MAX_CONCURRENCY="3")
    yuanqi.max_concurrent = 3  # the fake answers a 4th concurrent call with 429
    telegram.deliver_webhooks([r.webhook_url for r in replicas], SECRET, max_connections=20,
                              duplicate_every=3, retry_delay=0.05)
    chats = range(1, 31)
    for chat in chats:
        telegram.send_user_message(chat, f"a{chat}")
    for chat in chats:
        telegram.send_user_message(chat, f"b{chat}")
    await telegram.wait_for(lambda: all(texts(telegram, c) == [f"Echo: a{c}", f"Echo: b{c}"] for c in chats), 60)
    assert yuanqi.rejected_concurrency == 0
    assert yuanqi.peak_concurrency <= 3
    assert len(yuanqi.requests) == 60
    for chat in chats:
        second = next(r for r in yuanqi.requests if r.last_user_text == f"b{chat}")
        assert [m["content"][0]["text"] for m in second.messages] == [f"a{chat}", f"Echo: a{chat}", f"b{chat}"]
    deliveries = Counter(d.update_id for d in telegram.webhook_deliveries if d.outcome == 200)
    assert all(deliveries[u] >= 2 for u in range(3, 61, 3))  # every third update came twice
    assert len({d.url for d in telegram.webhook_deliveries}) == 3


async def test_an_album_spread_over_two_replicas_is_one_turn(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi
) -> None:
    """Three photos of one album, each delivered to the next replica in turn, reach the agent as
    one question with all three pictures, answered once."""
    replicas = await launch(2)
    telegram.deliver_webhooks([r.webhook_url for r in replicas], SECRET, max_connections=1, retry_delay=0.05)
    pictures = [bytes([i]) * 2000 for i in (1, 2, 3)]
    for i, picture in enumerate(pictures):
        telegram.send_user_message(1, None, caption="these?" if i == 0 else None,
                                   photo=telegram.photo_sizes(picture), media_group_id="album-1")
    await telegram.wait_for(lambda: texts(telegram, 1) == ["Echo: these?"], 15)
    assert {d.url for d in telegram.webhook_deliveries} == {r.webhook_url for r in replicas}
    [request] = yuanqi.requests
    assert sorted(await fetch_image_parts(request)) == sorted(pictures)


async def test_a_replica_killed_mid_answer_leaves_no_unexplained_half_message(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis
) -> None:
    """kill -9 of the replica streaming an answer: another replica marks the shown part as
    interrupted within seconds, and the chat keeps working."""
    replicas = await launch(2)
    telegram.deliver_webhooks([r.webhook_url for r in replicas], SECRET, retry_delay=0.05)
    gate = Gate()
    yuanqi.script(Stream(["Half an ", gate, "answer."]))
    telegram.send_user_message(1, "question")
    await telegram.wait_for(lambda: texts(telegram, 1) == ["Half an"], 15)
    turn = f"yq:{BOT_ID}:{{c:1}}:turn"
    while b'"m":[]' in (await redis.get(turn) or b'"m":[]'):  # noqa: ASYNC110 - the holder records it
        await asyncio.sleep(0.01)
    holder = pid_of_holder(await redis.get(f"yq:{BOT_ID}:{{c:1}}:lease"))
    victim = next(r for r in replicas if r.pid == holder)
    victim.kill()
    await telegram.wait_for(lambda: texts(telegram, 1) == [f"Half an\n\n{INTERRUPTED}"], 30)
    telegram.send_user_message(1, "again")
    await telegram.wait_for(lambda: texts(telegram, 1)[-1:] == ["Echo: again"], 15)
    assert len(texts(telegram, 1)) == 2


async def test_sigterm_finishes_the_answer_and_a_restart_answers_what_was_queued(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis
) -> None:
    """Polling mode: SIGTERM lets the answer in flight finish, exits 0, and the message queued
    behind it is answered after the restart, not lost."""
    [bot] = await launch(1, webhook=False)
    gate = Gate()
    yuanqi.script(Stream(["Part one ", gate, "and two."]))
    telegram.send_user_message(1, "q1")
    await telegram.wait_for(lambda: texts(telegram, 1) == ["Part one"], 15)
    telegram.send_user_message(1, "q2")
    mail = f"yq:{BOT_ID}:{{c:1}}:mail"
    while await redis.llen(mail) < 2:  # noqa: ASYNC110 - waiting for the other process
        await asyncio.sleep(0.02)
    stopping = asyncio.create_task(bot.terminate())
    await asyncio.sleep(0.3)
    gate.open()
    assert await stopping == 0
    assert texts(telegram, 1) == ["Part one and two."]
    assert len(yuanqi.requests) == 1  # no agent call started after SIGTERM
    await launch(1, webhook=False)
    await telegram.wait_for(lambda: texts(telegram, 1) == ["Part one and two.", "Echo: q2"], 15)


async def test_sigterm_marks_an_answer_the_grace_period_cuts(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi
) -> None:
    """An answer still streaming when the grace period ends is shown marked as interrupted, and
    the process exits 0."""
    [bot] = await launch(1, SHUTDOWN_GRACE_SECONDS="1")
    telegram.deliver_webhooks([bot.webhook_url], SECRET, retry_delay=0.05)
    yuanqi.script(Stream(["Never ", Gate(), "finished."]))
    telegram.send_user_message(1, "question")
    await telegram.wait_for(lambda: texts(telegram, 1) == ["Never"], 15)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await bot.terminate() == 0
    assert loop.time() - began < 10
    assert texts(telegram, 1) == [f"Never\n\n{INTERRUPTED}"]


async def test_webhook_refuses_a_wrong_secret_and_serves_health(
    launch: Launch, telegram: FakeTelegram, redis: Redis
) -> None:
    """A POST without the right secret gets 401 and is not recorded; /healthz, /readyz and
    /metrics answer."""
    [bot] = await launch(1)
    update = {"update_id": 99, "message": {"message_id": 1, "date": 0, "text": "hi",
                                           "chat": {"id": 5, "type": "private"}}}
    async with httpx.AsyncClient(trust_env=False) as http:
        wrong = await http.post(bot.webhook_url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
        missing = await http.post(bot.webhook_url, json=update)
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert await redis.exists(f"yq:{BOT_ID}:{{c:5}}:mail", f"yq:{BOT_ID}:{{c:5}}:seen") == 0
    assert (await bot.get("/healthz")).status_code == 200
    assert (await bot.get("/readyz")).status_code == 200
    metrics = await bot.get("/metrics")
    assert metrics.status_code == 200 and "yuanqi_bot_turns_total" in metrics.text


async def test_set_webhook_and_delete_webhook_commands(
    telegram: FakeTelegram, yuanqi: FakeYuanqi, redis_url: str, tmp_path: Path
) -> None:
    """``yuanqi-bot set-webhook`` registers the URL, secret and update types; ``delete-webhook``
    goes back to polling."""
    env = bot_env(telegram, yuanqi, redis_url, WEBHOOK_URL="https://bot.example/telegram",
                  WEBHOOK_SECRET=SECRET)
    for command in ("set-webhook", "delete-webhook"):
        proc = await asyncio.create_subprocess_exec(
            "python", "-m", "bot", command, env={**env, "PATH": _venv_path()}, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        assert proc.returncode == 0, output
        if command == "set-webhook":
            assert telegram.webhook_url == "https://bot.example/telegram"
            assert telegram.webhook_secret == SECRET
            call = telegram.calls_of("setWebhook")[-1]
            assert set(call.params["allowed_updates"]) == {
                    "message", "my_chat_member", "callback_query", "stopped_message_generation"}
    assert telegram.webhook_url == ""


def _venv_path() -> str:
    return f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"


async def test_a_stop_reaches_the_replica_streaming_the_answer(
    launch: Launch, telegram: FakeTelegram, yuanqi: FakeYuanqi, redis: Redis
) -> None:
    """Telegram's stop button on a draft, delivered to the replica that is *not* streaming the
    answer: the streaming replica closes the agent's stream within a second and keeps the
    partial answer as a message marked as stopped."""
    replicas = await launch(2, STREAM_MODE="auto", DRAFT_INTERVAL="0.05")
    telegram.deliver_webhooks([r.webhook_url for r in replicas], SECRET, retry_delay=0.05)
    yuanqi.script(HangAfter(["Half of it"]))
    telegram.send_user_message(1, "write an essay")
    await telegram.wait_for(lambda: any(d.text == "Half of it" for d in telegram.drafts.get(1, [])), 15)
    holder = pid_of_holder(await redis.get(f"yq:{BOT_ID}:{{c:1}}:lease"))
    streaming = next(r for r in replicas if r.pid == holder)
    telegram.stop_generation(1, telegram.drafts[1][-1].draft_id)
    began = time.monotonic()
    await yuanqi.wait_for(lambda: yuanqi.requests[0].closed_at is not None, 5)
    closed_at = yuanqi.requests[0].closed_at
    assert closed_at is not None and closed_at - began < 1.0
    await telegram.wait_for(lambda: len({d.update_id for d in telegram.webhook_deliveries}) == 2, 5)
    stop = next(d for d in telegram.webhook_deliveries if d.update_id == max(
        d.update_id for d in telegram.webhook_deliveries))
    assert stop.url != streaming.webhook_url  # it reached the other replica
    await telegram.wait_for(lambda: texts(telegram, 1) == ["Half of it\n\n⏹ Stopped."], 15)
