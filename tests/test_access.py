"""Access: who may use the bot; both lists empty means everyone."""

from __future__ import annotations

import pytest

from bot.tg.access import Access

ANN, BOB = 424242, 515151
TEAM, OTHER_GROUP = -1001234567890, -1009999999999


@pytest.mark.parametrize(
    ("chat_id", "user_id"),
    [
        pytest.param(ANN, ANN, id="private"),
        pytest.param(TEAM, BOB, id="group"),
        pytest.param(TEAM, None, id="group-no-user"),
    ],
)
def test_empty_lists_let_everyone_in(chat_id: int, user_id: int | None) -> None:
    """With no allowed users and no allowed chats the bot is open to all."""
    access = Access()
    assert access.open
    assert access.allows(chat_id, user_id)


@pytest.mark.parametrize(
    "access",
    [
        pytest.param(Access(users=frozenset({ANN})), id="users-only"),
        pytest.param(Access(chats=frozenset({TEAM})), id="chats-only"),
    ],
)
def test_any_list_closes_the_bot(access: Access) -> None:
    """One non-empty list is enough to make access restricted."""
    assert not access.open


ACCESS = Access(users=frozenset({ANN}), chats=frozenset({TEAM}))


@pytest.mark.parametrize(
    ("chat_id", "user_id", "allowed"),
    [
        pytest.param(TEAM, BOB, True, id="allowed-chat-any-user"),
        pytest.param(TEAM, None, True, id="allowed-chat-no-user"),
        pytest.param(ANN, ANN, True, id="allowed-user-private"),
        pytest.param(OTHER_GROUP, ANN, True, id="allowed-user-in-other-group"),
        pytest.param(BOB, BOB, False, id="other-user-private"),
        pytest.param(OTHER_GROUP, BOB, False, id="other-user-other-group"),
        pytest.param(OTHER_GROUP, None, False, id="other-group-no-user"),
    ],
)
def test_allowed_by_chat_or_by_user(chat_id: int, user_id: int | None, allowed: bool) -> None:
    """An allowed chat admits everyone in it; an allowed user is admitted anywhere; others are not."""
    assert ACCESS.allows(chat_id, user_id) is allowed



@pytest.mark.parametrize(
    ("chat_id", "origin", "allowed"),
    [
        pytest.param(-1004001, TEAM, True, id="supergroup-of-an-allowed-group"),
        pytest.param(TEAM, -4001, True, id="listed-under-its-new-id"),
        pytest.param(-1004001, OTHER_GROUP, False, id="supergroup-of-another-group"),
        pytest.param(-1004001, None, False, id="no-origin"),
    ],
)
def test_a_migrated_group_is_allowed_by_its_first_id(chat_id: int, origin: int | None, allowed: bool) -> None:
    """A group on the list that became a supergroup (a new chat id) is still allowed, by either id."""
    assert ACCESS.allows(chat_id, BOB, origin=origin) is allowed
