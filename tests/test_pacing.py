"""next_action() (the pure edit-or-wait decision), the in-process slot book, GlobalBudget and ChatPacer."""

from __future__ import annotations

import asyncio

import pytest

from bot.reply.pacing import Action, ChatPacer, GlobalBudget, MemorySlots, Priority, Push, Wait, next_action
from bot.reply.render import Chunk
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


async def test_unknown_chat_is_ready_at_once(clock: ManualClock) -> None:
    """A chat that never had an operation may act immediately, streaming or final."""
    slots = MemorySlots(clock)
    assert slots.chat_wait(7, 1.0) <= 0 and slots.chat_wait(7, 1.0, reserve=0) <= 0
    assert await slots.take_chat(7, 1.0) == 0.0


async def test_streaming_goes_once_a_period_and_the_final_text_may_use_the_reserve(
    clock: ManualClock,
) -> None:
    """Streaming operations keep one in reserve, so they are a period apart; the final text
    may go right after one, and then the chat's bucket is empty for a period."""
    slots = MemorySlots(clock)
    assert await slots.take_chat(1, 1.5) == 0.0
    assert await slots.take_chat(1, 1.5) == pytest.approx(1.5)  # streaming: wait
    assert await slots.take_chat(1, 1.5, reserve=0) == 0.0  # the final text: at once
    assert await slots.take_chat(1, 1.5, reserve=0) == pytest.approx(1.5)
    assert await slots.take_chat(1, 1.5) == pytest.approx(3.0)


async def test_take_while_waiting_books_nothing(clock: ManualClock) -> None:
    """Before the chat's slot comes, a take answers the remaining wait and leaves the slot alone."""
    slots = MemorySlots(clock)
    await slots.take_chat(1, 3.0)
    await clock.advance(1.0)
    assert await slots.take_chat(1, 3.0) == pytest.approx(2.0)
    assert await slots.take_chat(1, 3.0) == pytest.approx(2.0)


async def test_a_bucket_refills_while_the_chat_is_quiet(clock: ManualClock) -> None:
    """Long after its last operation a chat has its whole bucket again, never more."""
    slots = MemorySlots(clock)
    await slots.take_chat(1, 1.0)
    await clock.advance(10.0)
    assert await slots.take_chat(1, 1.0) == 0.0
    assert await slots.take_chat(1, 1.0, reserve=0) == 0.0
    assert await slots.take_chat(1, 1.0, reserve=0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("booked", "hold", "ready"),
    [
        pytest.param(2.0, 7.0, 7.0, id="hold-pushes-later"),
        pytest.param(30.0, 7.0, 30.0, id="hold-never-pulls-earlier"),
        pytest.param(None, 5.0, 5.0, id="hold-idle-chat"),
    ],
)
async def test_hold_never_moves_a_slot_earlier(
    clock: ManualClock, booked: float | None, hold: float, ready: float
) -> None:
    """A 429 holds the chat, final text included, until now + retry_after, unless its bucket was
    already empty for longer."""
    slots = MemorySlots(clock)
    if booked is not None:
        await slots.take_chat(1, booked)
        await slots.take_chat(1, booked, reserve=0)
    await slots.hold_chat(1, hold)
    assert slots.chat_wait(1, booked or 1.0, reserve=0) == pytest.approx(ready)


async def test_chats_are_independent(clock: ManualClock) -> None:
    """Operations and holds in one chat leave another chat's slot alone."""
    slots = MemorySlots(clock)
    await slots.take_chat(1, 3.0)
    await slots.hold_chat(1, 60.0)
    await slots.take_chat(2, 1.0)
    assert slots.chat_wait(2, 1.0) == pytest.approx(1.0)
    assert slots.chat_wait(1, 3.0, reserve=0) == pytest.approx(60.0)
    assert slots.chat_wait(3, 1.0) <= 0


@pytest.mark.parametrize("by", ["take", "hold"])
async def test_pruning_forgets_only_past_slots(clock: ManualClock, by: str) -> None:
    """After many bookings (takes, or holds alone as a shared book's copy makes), chats whose
    bucket has long been full are forgotten; the others are kept."""
    slots = MemorySlots(clock)
    await slots.take_chat(1, 1.0)  # will be long past
    await slots.hold_chat(2, 7200.0)  # still in the future
    await clock.advance(4000.0)
    blocked = slots.chat_wait(2, 1.0, reserve=0)
    for i in range(OPS):
        await (slots.take_chat(1000 + i, 0.5) if by == "take" else slots.hold_chat(1000 + i, 0.5))
    assert slots.chat_wait(2, 1.0, reserve=0) == pytest.approx(blocked)
    assert 1 not in slots._allow  # forgotten, which is the same as a full bucket
    assert slots.chat_wait(1, 1.0) <= 0


async def test_bot_window_grants_its_limit_a_second(clock: ManualClock) -> None:
    """Up to ``limit`` bot-wide slots go in any second; the next waits for the oldest to leave
    the window; a refused take books nothing."""
    slots = MemorySlots(clock)
    assert [await slots.take_bot(3) for _ in range(3)] == [0.0] * 3
    assert await slots.take_bot(3) == pytest.approx(1.0)
    await clock.advance(0.4)
    assert await slots.take_bot(3) == pytest.approx(0.6)
    await clock.advance(0.6)  # all three have left the window together
    assert [await slots.take_bot(3) for _ in range(3)] == [0.0] * 3
    assert slots.bot_wait(3) == pytest.approx(1.0)


async def test_bot_window_reserve_is_left_to_the_urgent(clock: ManualClock) -> None:
    """A take that keeps a reserve is spread out (a third of a second apart, for three a
    second) and stops short of the limit; one without goes at once and may use the rest."""
    slots = MemorySlots(clock)
    assert await slots.take_bot(3, reserve=1) == 0.0
    assert await slots.take_bot(3, reserve=1) == pytest.approx(1 / 3)
    await clock.advance(1 / 3)
    assert await slots.take_bot(3, reserve=1) == 0.0
    assert await slots.take_bot(3, reserve=1) == pytest.approx(2 / 3)  # two: the reserve is left
    assert await slots.take_bot(3) == 0.0
    assert await slots.take_bot(3) == pytest.approx(2 / 3)


async def slot_times(clock: ManualClock, pacer: ChatPacer, *calls: tuple[int, float], run: float) -> list[float]:
    """Start ``slot(chat, interval)`` calls in order, run the clock, and return when each was granted."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(pacer.slot(c, i, lambda: Priority.UPDATE)) for c, i in calls]
    await clock.advance(run)
    return [t.result() for t in tasks]


async def test_slot_spaces_a_chat_by_its_interval(clock: ManualClock) -> None:
    """The first operation in a chat goes at once, each next one an interval later."""
    start = clock.now()
    times = await slot_times(clock, ChatPacer(clock), (1, 1.0), (1, 1.0), (1, 1.0), run=5)
    assert times == [start, start + 1.0, start + 2.0]


async def test_a_chat_is_booked_while_it_waits_for_the_bot(clock: ManualClock) -> None:
    """A chat's turn is booked before the bot-wide wait, so nothing else goes in it meanwhile."""
    start = clock.now()
    pacer = ChatPacer(clock, per_second=1)
    times = await slot_times(clock, pacer, (1, 0.1), (2, 5.0), (2, 5.0), run=10)
    assert times == [start, start + 1.0, start + 5.0]


class CountingBook(MemorySlots):
    """Counts the calls a shared book would make to Redis, by kind and chat."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.calls: list[tuple[str, int | None]] = []

    async def take_chat(self, chat_id: int, period: float, *, reserve: int = 1) -> float:
        self.calls.append(("chat", chat_id))
        return await super().take_chat(chat_id, period, reserve=reserve)

    async def take_bot(self, limit: int, *, reserve: int = 0) -> float:
        self.calls.append(("bot", None))
        return await super().take_bot(limit, reserve=reserve)

    async def take_both(
        self, chat_id: int, period: float, *, reserve: int, limit: int, bot_reserve: int
    ) -> tuple[float, float | None]:
        self.calls.append(("both", chat_id))
        if (wait := await super().take_chat(chat_id, period, reserve=reserve)) > 0:
            return wait, None
        return 0.0, await super().take_bot(limit, reserve=bot_reserve)


async def test_a_queued_operation_books_its_chat_with_its_bot_wide_slot(clock: ManualClock) -> None:
    """An operation queued behind others for the bot-wide slot gets its chat's slot booked in the
    same call as the bot-wide one when its turn comes (one Redis round trip, not two), and from
    then: the chat's next operation is an interval after the grant, not after the queueing."""
    start = clock.now()
    book = CountingBook(clock)
    pacer = ChatPacer(clock, per_second=1, book=book)
    times = await slot_times(clock, pacer, (1, 0.1), (2, 0.1), (3, 5.0), run=3)
    assert times == [start, start + 1.0, start + 2.0]
    assert [call for call in book.calls if call[1] == 3] == [("both", 3)]
    assert await slot_times(clock, pacer, (3, 5.0), run=10) == [start + 7.0]


async def test_a_queued_operation_whose_chat_is_held_waits_out_the_hold(clock: ManualClock) -> None:
    """A chat held by a 429 while its operation waits in the queue: when its turn comes the
    chat refuses, the operation waits out the hold and goes then; the others are not held up."""
    start = clock.now()
    pacer = ChatPacer(clock, per_second=1)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(pacer.slot(c, 0.1, lambda: Priority.UPDATE)) for c in (1, 2, 3)]
    await settle()
    await pacer.block(3, 4.0)  # chat 3 waits behind chat 2, its chat not yet booked
    await clock.advance(10)
    assert [t.result() for t in tasks] == [start, start + 1.0, pytest.approx(start + 4.1)]  # + its reserve


async def test_the_final_text_does_not_wait_behind_the_last_edit(clock: ManualClock) -> None:
    """A final operation right after a streaming one goes at once; the next streaming one waits."""
    start = clock.now()
    pacer = ChatPacer(clock)
    await pacer.slot(1, 1.0, lambda: Priority.UPDATE)
    await clock.advance(0.2)
    await pacer.slot(1, 1.0, lambda: Priority.FINAL, urgent=lambda: True)
    assert clock.now() == start + 0.2
    assert await slot_times(clock, pacer, (1, 1.0), run=5) == [start + 2.0]


async def test_block_holds_the_chat_even_with_no_interval(clock: ManualClock) -> None:
    """After block(s) the chat's next slot is s away; an interval of 0 paces only by the bot budget."""
    start = clock.now()
    pacer = ChatPacer(clock, per_second=1)
    assert await slot_times(clock, pacer, (1, 0.0), (1, 0.0), run=1) == [start, start + 1.0]
    await pacer.block(1, 7.0)
    assert await slot_times(clock, pacer, (1, 0.0), run=10) == [pytest.approx(start + 1 + 7.0, abs=0.002)]


async def test_global_budget_serves_the_most_urgent_first(clock: ManualClock) -> None:
    """When slots are scarce, a final answer goes before updates and queue notices."""
    budget = GlobalBudget(clock, per_second=1)
    granted: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await budget.acquire(lambda: priority)
        granted.append(name)

    await take("first-come", Priority.STATUS)  # a free slot is granted at once
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(take(n, p)) for n, p in
             [("status", Priority.STATUS), ("update", Priority.UPDATE), ("final", Priority.FINAL)]]
    await clock.advance(3)
    await asyncio.gather(*tasks)
    assert granted == ["first-come", "final", "update", "status"]


async def test_global_budget_rereads_priority_and_skips_cancelled(clock: ManualClock) -> None:
    """A waiter whose answer starts moves up; a cancelled waiter gives its slot away."""
    budget = GlobalBudget(clock, per_second=1)
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
    await clock.advance(2)
    await asyncio.gather(early, late)
    assert order == ["late", "early"]


async def test_urgent_operations_use_the_reserve_at_once(clock: ManualClock) -> None:
    """Streaming edits are spread out and stop short of the bot-wide limit; a final text goes at
    once, and the edits go when the window has room for them."""
    budget = GlobalBudget(clock, per_second=3)  # edits: a third of a second apart, two a second
    start = clock.now()
    granted: dict[str, float] = {}

    async def take(name: str, priority: Priority) -> None:
        await budget.acquire(lambda: priority)
        granted[name] = clock.now()

    loop = asyncio.get_running_loop()
    edits = [loop.create_task(take(f"edit{i}", Priority.UPDATE)) for i in range(3)]
    await settle()
    assert list(granted) == ["edit0"]
    final = loop.create_task(take("final", Priority.FINAL))
    await settle()
    assert granted["final"] == start
    await clock.advance(2)
    await asyncio.gather(*edits, final)
    assert granted["edit1"] == pytest.approx(start + 1.0)  # edit0 and the final filled two places
    assert granted["edit2"] == pytest.approx(start + 4 / 3)


async def test_each_kind_leaves_its_share_of_the_window(clock: ManualClock) -> None:
    """Of six slots a second, status lines may hold two and streaming edits four, a sixth of a
    second apart; final texts go at once and may fill all six: a burst of answers ending
    together finds room."""
    budget = GlobalBudget(clock, per_second=6)
    granted: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await budget.acquire(lambda: priority)
        granted.append(name)

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(take(f"status{i}", Priority.STATUS)) for i in range(3)]
    tasks += [loop.create_task(take(f"edit{i}", Priority.UPDATE)) for i in range(3)]
    await settle()
    await clock.advance(0.55)
    assert granted == ["status0", "edit0", "edit1", "edit2"]
    tasks += [loop.create_task(take(f"final{i}", Priority.FINAL)) for i in range(3)]
    await settle()
    assert granted[4:] == ["final0", "final1"]  # six in this second
    await clock.advance(0.5)  # status0 has left the window
    assert granted[6:] == ["final2"]
    await clock.advance(2)
    await asyncio.gather(*tasks)
    assert granted[7:] == ["status1", "status2"]


async def test_a_waiter_whose_answer_starts_is_served_at_once(clock: ManualClock) -> None:
    """A status line waiting for the window becomes the answer's first words: nudged, the
    budget grants it from the reserve without waiting for the window to clear."""
    budget = GlobalBudget(clock, per_second=3)  # status lines: one a second
    state = {"priority": Priority.STATUS}
    await budget.acquire(lambda: Priority.STATUS)
    waiter = asyncio.get_running_loop().create_task(budget.acquire(lambda: state["priority"]))
    await settle()
    assert not waiter.done()
    state["priority"] = Priority.FIRST
    budget.nudge()
    await settle()
    assert waiter.done()


class BrokenBook(MemorySlots):
    async def take_bot(self, limit: int, *, reserve: int = 0) -> float:
        if await super().take_bot(limit, reserve=reserve) == 0.0:
            return 0.0
        raise RuntimeError("book broke")


async def test_global_budget_passes_a_broken_book_to_its_waiters(clock: ManualClock) -> None:
    """If the slot book fails while operations wait, they get its error instead of waiting forever."""
    budget = GlobalBudget(clock, per_second=1, book=BrokenBook(clock))
    await budget.acquire(lambda: Priority.FINAL)
    waiter = asyncio.get_running_loop().create_task(budget.acquire(lambda: Priority.FINAL))
    await clock.advance(1)
    with pytest.raises(RuntimeError, match="book broke"):
        await waiter
