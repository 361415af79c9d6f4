"""next_action() (the pure edit-or-wait decision) and ChatPacer (per-chat operation slots)."""

from __future__ import annotations

import asyncio

import pytest

from bot.pacing import Action, ChatPacer, GlobalBudget, Priority, Push, Wait, next_action
from bot.render import Chunk
from tests.conftest import ManualClock, settle

A, B, C = Chunk("a"), Chunk("b"), Chunk("c")
B2 = Chunk("b", ({"type": "bold", "offset": 0, "length": 1},))
OPS = 2 * 1024 + 1  # pruning runs every 1024 operations


@pytest.mark.parametrize(
    ("now", "ready_at", "shown", "wanted", "action"),
    [
        pytest.param(10, 0, [], [], None, id="nothing-wanted"),
        pytest.param(10, 0, [A, B], [A, B], None, id="all-shown"),
        pytest.param(10, 0, [], [A], Push(0, A), id="first-send"),
        pytest.param(10, 0, [A, B], [A, C], Push(1, C), id="second-changed"),
        pytest.param(10, 0, [A], [A, B, C], Push(1, B), id="new-message-after-shown"),
        pytest.param(10, 0, [A, B], [C, C], Push(0, C), id="first-difference-wins"),
        pytest.param(10, 0, [A, B], [A, B2], Push(1, B2), id="entities-alone-differ"),
        pytest.param(10, 12.5, [A], [B], Wait(12.5), id="slot-in-future"),
        pytest.param(10, 10, [A], [B], Push(0, B), id="slot-exactly-now"),
        pytest.param(10, 12.5, [A], [A], None, id="nothing-to-do-while-waiting"),
        pytest.param(10, 0, [A, B, C], [A, B], None, id="shorter-wanted-equal-prefix"),
    ],
)
def test_next_action(
    now: float, ready_at: float, shown: list[Chunk], wanted: list[Chunk], action: Action
) -> None:
    """Nothing when every wanted chunk is shown, else push the first difference or wait for the slot."""
    assert next_action(now, ready_at, shown, wanted) == action


def test_unknown_chat_is_ready_at_once(clock: ManualClock) -> None:
    """A chat that never had an operation may act immediately."""
    assert ChatPacer(clock).ready_at(7) <= clock.now()


def test_spend_books_now_plus_interval(clock: ManualClock) -> None:
    """An operation in an idle chat makes the next one wait exactly the interval."""
    pacer = ChatPacer(clock)
    pacer.spend(1, 1.5)
    assert pacer.ready_at(1) == clock.now() + 1.5


async def test_spend_while_waiting_books_after_the_pending_slot(clock: ManualClock) -> None:
    """An operation booked before the slot comes queues behind it: ready + interval, not now + interval."""
    pacer = ChatPacer(clock)
    pacer.spend(1, 3.0)
    first = pacer.ready_at(1)
    await clock.advance(1.0)
    pacer.spend(1, 3.0)
    assert pacer.ready_at(1) == first + 3.0


async def test_spend_after_the_slot_passed_starts_from_now(clock: ManualClock) -> None:
    """Once the chat's slot is in the past, a new operation books from the present moment."""
    pacer = ChatPacer(clock)
    pacer.spend(1, 1.0)
    await clock.advance(10.0)
    pacer.spend(1, 1.0)
    assert pacer.ready_at(1) == clock.now() + 1.0


@pytest.mark.parametrize(
    ("booked", "block", "ready"),
    [
        pytest.param(2.0, 7.0, 7.0, id="block-pushes-later"),
        pytest.param(30.0, 7.0, 30.0, id="block-never-pulls-earlier"),
        pytest.param(None, 5.0, 5.0, id="block-idle-chat"),
    ],
)
def test_block_never_moves_a_slot_earlier(
    clock: ManualClock, booked: float | None, block: float, ready: float
) -> None:
    """A 429 holds the chat until now + retry_after, unless its slot was already later."""
    pacer = ChatPacer(clock)
    if booked is not None:
        pacer.spend(1, booked)
    pacer.block(1, block)
    assert pacer.ready_at(1) == clock.now() + ready


def test_chats_are_independent(clock: ManualClock) -> None:
    """Operations and blocks in one chat leave another chat's slot alone."""
    pacer = ChatPacer(clock)
    pacer.spend(1, 3.0)
    pacer.block(1, 60.0)
    pacer.spend(2, 1.0)
    assert pacer.ready_at(2) == clock.now() + 1.0
    assert pacer.ready_at(1) == clock.now() + 60.0
    assert pacer.ready_at(3) <= clock.now()


async def test_pruning_forgets_only_past_slots(clock: ManualClock) -> None:
    """After many operations, slots still in the future survive pruning; past ones are forgotten."""
    pacer = ChatPacer(clock)
    pacer.spend(1, 1.0)  # will be in the past
    pacer.block(2, 3600.0)  # still in the future
    pacer.spend(3, 100.0)  # still in the future
    await clock.advance(5.0)
    blocked, booked = pacer.ready_at(2), pacer.ready_at(3)
    for i in range(OPS):
        pacer.spend(1000 + i, 0.5)
    assert pacer.ready_at(2) == blocked
    assert pacer.ready_at(3) == booked
    assert pacer.ready_at(1) == 0.0  # forgotten, which is the same as "ready"
    assert pacer.ready_at(1000 + OPS - 1) == clock.now() + 0.5


async def test_global_budget_serves_the_most_urgent_first(clock: ManualClock) -> None:
    """When slots are scarce, a final answer goes before updates and queue notices."""
    budget = GlobalBudget(clock, per_second=10)
    granted: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await budget.acquire(lambda: priority)
        granted.append(name)

    await take("first-come", Priority.STATUS)  # a free slot is granted at once
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(take(n, p)) for n, p in
             [("status", Priority.STATUS), ("update", Priority.UPDATE), ("final", Priority.FINAL)]]
    await clock.advance(1)
    await asyncio.gather(*tasks)
    assert granted == ["first-come", "final", "update", "status"]


async def test_global_budget_rereads_priority_and_skips_cancelled(clock: ManualClock) -> None:
    """A waiter whose answer starts moves up; a cancelled waiter gives its slot away."""
    budget = GlobalBudget(clock, per_second=10)
    await budget.acquire(lambda: Priority.FINAL)
    state = {"late": Priority.STATUS}
    order: list[str] = []

    async def take(name: str) -> None:
        await budget.acquire(lambda: state.get(name, Priority.UPDATE))
        order.append(name)

    loop = asyncio.get_running_loop()
    early, late, gone = (loop.create_task(take(n)) for n in ("early", "late", "gone"))
    await settle()
    gone.cancel()
    state["late"] = Priority.FIRST
    await clock.advance(1)
    await asyncio.gather(early, late)
    assert order == ["late", "early"]
