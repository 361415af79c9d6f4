"""bot.reply.looks: which look each answer gets (draft, Stop button, held short answers)."""

from __future__ import annotations

from bot.cluster.routing import button_data
from bot.cluster.turns import TurnRecord
from bot.question import Streaming
from bot.reply.looks import Looks
from bot.reply.ports import Draft, Look

TURN = TurnRecord(41)
AUTO = Streaming(mode="auto", draft_interval=0.4, draft_keepalive=20, group_hold_chars=300)


def test_private_chats_get_a_draft_and_groups_a_button_and_a_hold() -> None:
    looks = Looks(AUTO, stoppable=True)
    assert looks.of(7, TURN, "en") == Look(draft=Draft(TURN.draft_id, 0.4, 20))
    assert looks.of(-100, TURN, "zh-tw") == Look(button=("⏹ 停止", button_data(41)), hold=300)


def test_edit_mode_and_no_stop_signals() -> None:
    """STREAM_MODE=edit: private chats are edited, with the button; no stop signals, no button."""
    edits = Streaming(mode="edit", group_hold_chars=300)
    assert Looks(edits, stoppable=True).of(7, TURN, None) == Look(button=("⏹ Stop", button_data(41)))
    assert Looks(edits, stoppable=False).of(-100, TURN, None) == Look(hold=300)
    assert Looks(AUTO, stoppable=True).of(7, None, None) == Look()  # no turn: nothing to stop


def test_a_chat_whose_draft_failed_is_edited_from_then_on() -> None:
    looks = Looks(AUTO, stoppable=True)

    class Failed:
        draft_failed = True

    looks.learn(7, Failed())  # type: ignore[arg-type]
    assert looks.of(7, TURN, None).draft is None
    assert looks.of(8, TURN, None).draft is not None
    assert looks.of(7, TURN, None).button == ("⏹ Stop", button_data(41))
