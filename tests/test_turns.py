"""Turn records: their JSON round trip, and what a replica that finds one after a crash does."""

from __future__ import annotations

import pytest

from bot.cluster.turns import MAX_ATTEMPTS, Recovery, TurnRecord, next_attempt, recovery_for


def test_record_survives_a_round_trip() -> None:
    """A record written to Redis reads back equal, non-ASCII text included."""
    record = TurnRecord(7, attempt=2, message_ids=(10, 11), text="半个回答 **bold", final=False, deferred=True)
    assert TurnRecord.loads(record.dumps()) == record


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '{"a": 1}', '{"u": "x"}', '{"u": 1, "m": ["a"]}'],
                         ids=["empty", "not json", "list", "no update id", "bad id", "bad message id"])
def test_unreadable_records_are_ignored(raw: str) -> None:
    """A missing or damaged record means the turn starts afresh instead of crashing the drainer."""
    assert TurnRecord.loads(raw) is None


@pytest.mark.parametrize(("record", "action"), [
    (TurnRecord(1, text="all of it", final=True), Recovery.FINISHED),
    (TurnRecord(1, message_ids=(5,), text="half"), Recovery.MARK),
    (TurnRecord(1, message_ids=(5,), text="half", attempt=MAX_ATTEMPTS), Recovery.MARK),
    (TurnRecord(1, message_ids=(5,), text="   "), Recovery.RETRY),
    (TurnRecord(1), Recovery.RETRY),
    (TurnRecord(1, attempt=MAX_ATTEMPTS), Recovery.GIVE_UP),
    (TurnRecord(1, attempt=MAX_ATTEMPTS, deferred=True), Recovery.RETRY),
], ids=["final", "partial", "partial after retries", "only spaces", "nothing shown", "too many attempts",
        "deferred at shutdown"])
def test_recovery_decision(record: TurnRecord, action: Recovery) -> None:
    """Complete: nothing; partly shown: mark it; nothing shown: run again, but not forever."""
    assert recovery_for(record) is action


def test_next_attempt_counts_crashes_but_not_deferrals() -> None:
    """A retry after a crash is a new attempt; a turn put back at shutdown keeps its count."""
    crashed = TurnRecord(3, attempt=1, message_ids=(9,))
    assert next_attempt(crashed) == TurnRecord(3, attempt=2, message_ids=(9,))
    deferred = TurnRecord(3, attempt=1, message_ids=(9,), deferred=True)
    assert next_attempt(deferred) == TurnRecord(3, attempt=1, message_ids=(9,))


def test_the_asker_survives_a_round_trip_and_a_retry() -> None:
    """Who asked is kept (they may stop the answer), also by a record written before it existed."""
    record = TurnRecord(9, asker=77)
    assert TurnRecord.loads(record.dumps()) == record
    assert next_attempt(record).asker == 77
    assert TurnRecord.loads('{"u": 9}') == TurnRecord(9)


@pytest.mark.parametrize("update_id", [0, 1, 2_147_483_646, 2_147_483_647, 10**12])
def test_draft_ids_are_non_zero_32_bit_and_stable(update_id: int) -> None:
    """Telegram wants a non-zero draft id; every replica derives the same one for a turn."""
    draft = TurnRecord(update_id).draft_id
    assert 0 < draft <= 2**31 - 1 and draft == TurnRecord(update_id, attempt=2).draft_id
