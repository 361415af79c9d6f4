"""incoming: is the bot addressed, which conversation is it, what text and files go to the agent."""

from __future__ import annotations

import re
from typing import Any

import pytest
from telegram import Bot, Message

from bot.tg.incoming import (
    Attachment,
    Scope,
    addressed,
    attachments,
    combine,
    conversation_key,
    has_content,
    has_media,
    may_have_migrated,
    migration,
    question_text,
    strip_mention,
    without_command,
)
from storage import ConversationKey
from tests.fakes.telegram import BOT_TOKEN

BOT_ID = 123456
USERNAME = "yuanqi_test_bot"
# Only handed to de_json so messages are bound to a bot, as PTB's would be; it is never called.
BOT = Bot(BOT_TOKEN, base_url="http://127.0.0.1:9/bot", base_file_url="http://127.0.0.1:9/file/bot")

BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Yuanqi Test Bot", "username": USERNAME}
ANN = {"id": 424242, "is_bot": False, "first_name": "Ann"}
BOB = {"id": 515151, "is_bot": False, "first_name": "Bob", "last_name": "Stone"}
OTHER_BOT = {"id": 777000, "is_bot": True, "first_name": "Helper", "username": "helper_bot"}
GROUP = {"id": -1001234567890, "type": "supergroup", "title": "Team"}
FORUM = {"id": -1009876543210, "type": "supergroup", "title": "Forum", "is_forum": True}
PRIVATE = {"id": 424242, "type": "private", "first_name": "Ann"}
TOPIC = 55  # message_thread_id of a forum topic (= the id of its creation message)
MB = 1024 * 1024

_ENTITY_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}\b|^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")


def u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entities_of(text: str) -> list[dict[str, Any]]:
    """The mention and bot_command entities Telegram attaches, with UTF-16 offsets."""
    return [
        {"type": "bot_command" if m.group().startswith("/") else "mention",
         "offset": u16(text[: m.start()]), "length": u16(m.group())}
        for m in _ENTITY_RE.finditer(text)
    ]


def message_dict(**overrides: Any) -> dict[str, Any]:
    """A message as Telegram sends it: a user's group message unless overridden (``from_`` is ``from``)."""
    data: dict[str, Any] = {"message_id": 77, "date": 1_750_000_000, "chat": GROUP, "from": ANN}
    if "from_" in overrides:
        data["from"] = overrides.pop("from_")
    data.update(overrides)
    if "text" in data and "entities" not in data and entities_of(data["text"]):
        data["entities"] = entities_of(data["text"])
    if "caption" in data and "caption_entities" not in data and entities_of(data["caption"]):
        data["caption_entities"] = entities_of(data["caption"])
    return {key: value for key, value in data.items() if value is not None}


def make_message(**overrides: Any) -> Message:
    return Message.de_json(message_dict(**overrides), BOT)


def bot_answer(**overrides: Any) -> dict[str, Any]:
    return message_dict(message_id=70, from_=BOT_USER, text="Paris is the capital.", **overrides)


def topic_start(from_: dict[str, Any]) -> dict[str, Any]:
    """The service message that opened a forum topic; its id is the topic's thread id."""
    return message_dict(
        message_id=TOPIC, chat=FORUM, from_=from_, message_thread_id=TOPIC, is_topic_message=True,
        forum_topic_created={"name": "Ideas", "icon_color": 7322096},
    )


def photo_sizes(prefix: str = "AgACAgPHOTO") -> list[dict[str, Any]]:
    """Four sizes, smallest first, as Telegram lists them."""
    dims = [(90, 67, 1_200), (320, 240, 14_000), (800, 600, 61_000), (1280, 960, 140_000)]
    return [{"file_id": f"{prefix}-{w}", "file_unique_id": f"U{prefix}{w}", "width": w, "height": h,
             "file_size": size} for w, h, size in dims]


def document(mime: str | None, file_id: str = "BQACAgDOC-1") -> dict[str, Any]:
    data = {"file_id": file_id, "file_unique_id": "AgADDOC1", "file_name": "notes", "file_size": 2_048}
    return data if mime is None else {**data, "mime_type": mime}


VOICE = {"file_id": "AwACAgVOICE-1", "file_unique_id": "AgADVOICE", "duration": 3,
         "mime_type": "audio/ogg", "file_size": 9_000}
AUDIO = {"file_id": "CQACAgAUDIO-1", "file_unique_id": "AgADAUDIO", "duration": 200,
         "mime_type": "audio/mpeg", "file_size": 3_000_000}
VIDEO = {"file_id": "BAACAgVIDEO-1", "file_unique_id": "AgADVIDEO", "width": 640, "height": 360,
         "duration": 12, "mime_type": "video/mp4", "file_size": 1_500_000}
VIDEO_NOTE = {"file_id": "DQACAgNOTE-1", "file_unique_id": "AgADNOTE", "length": 240, "duration": 5}


# --- addressed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"text": "hello"}, id="text"),
        pytest.param({"text": "hi @helper_bot"}, id="mentions-another-bot"),
        pytest.param({"photo": photo_sizes()}, id="photo-without-caption"),
    ],
)
def test_private_messages_are_always_addressed(fields: dict[str, Any]) -> None:
    """In a private chat every message is for the bot, mentioned or not."""
    assert addressed(make_message(chat=PRIVATE, **fields), BOT_ID, USERNAME)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"text": "@yuanqi_test_bot what is 2+2?"}, True, id="mention-in-text"),
        pytest.param({"text": "so, @yuanqi_test_bot, what now?"}, True, id="mention-mid-text"),
        pytest.param({"text": "@YUANQI_TEST_BOT what is 2+2?"}, True, id="mention-upper-case"),
        pytest.param({"photo": photo_sizes(), "caption": "@yuanqi_test_bot what is this?"}, True,
                     id="mention-in-caption"),
        pytest.param({"text": "@helper_bot what is 2+2?"}, False, id="other-bot-only"),
        pytest.param({"text": "what is 2+2?"}, False, id="no-mention"),
        pytest.param({"text": "mail yuanqi_test_bot about it"}, False, id="name-without-at"),
        pytest.param({"text": "@yuanqi_test_bot", "entities": []}, False, id="no-mention-entity"),
        pytest.param({"reply_to_message": bot_answer(), "text": "and Spain?"}, True,
                     id="reply-to-bot"),
        pytest.param({"reply_to_message": message_dict(message_id=70, from_=BOB, text="hi"),
                      "text": "and Spain?"}, False, id="reply-to-someone-else"),
        pytest.param({"reply_to_message": message_dict(message_id=70, from_=OTHER_BOT, text="hi"),
                      "text": "and Spain?"}, False, id="reply-to-another-bot"),
    ],
)
def test_group_messages_are_addressed_by_mention_or_reply(fields: dict[str, Any], expected: bool) -> None:
    """In a group the bot answers a mention of itself (text or caption, any case) or a reply to it."""
    assert addressed(make_message(**fields), BOT_ID, USERNAME) is expected


def test_mention_offsets_are_read_in_utf16() -> None:
    """A mention after an emoji (two UTF-16 units) is found at the offset Telegram gives."""
    text = "😀 @yuanqi_test_bot hi"
    entities = [{"type": "mention", "offset": 3, "length": 16}]
    assert addressed(make_message(text=text, entities=entities), BOT_ID, USERNAME)


def test_mention_entity_covering_another_name_does_not_count() -> None:
    """Only the text an entity covers counts: our name elsewhere in the text is not a mention."""
    text = "@helper_bot ask yuanqi_test_bot"
    message = make_message(text=text, entities=[{"type": "mention", "offset": 0, "length": 11}])
    assert not addressed(message, BOT_ID, USERNAME)


@pytest.mark.parametrize(
    ("replied", "author"),
    [
        pytest.param("creation", BOT_USER, id="forum-topic-created-by-bot"),
        pytest.param("creation", ANN, id="forum-topic-created-by-user"),
        pytest.param("stub", BOT_USER, id="thread-id-equals-reply-id"),
        pytest.param("unflagged", BOT_USER, id="forum-topic-created-without-topic-flag"),
    ],
)
def test_reply_to_a_topic_creation_message_is_not_a_reply(replied: str, author: dict[str, Any]) -> None:
    """Forum gotcha: a plain topic message 'replies' to the topic's first message; that never addresses."""
    topic: dict[str, Any] = {"message_thread_id": TOPIC, "is_topic_message": True}
    if replied == "stub":  # no forum_topic_created: identified only by its id
        target = message_dict(message_id=TOPIC, chat=FORUM, from_=author, text="Welcome", **topic)
    else:
        target = topic_start(author)
    if replied == "unflagged":  # forum_topic_created alone must be enough
        topic = {}
    message = make_message(chat=FORUM, reply_to_message=target, text="what is 2+2?", **topic)
    assert not addressed(message, BOT_ID, USERNAME)


def test_explicit_reply_to_bot_inside_a_topic_is_addressed() -> None:
    """Inside a forum topic, replying to one of the bot's answers does address it."""
    answer = bot_answer(chat=FORUM, message_thread_id=TOPIC, is_topic_message=True)
    message = make_message(chat=FORUM, message_thread_id=TOPIC, is_topic_message=True,
                           reply_to_message=answer, text="and Spain?")
    assert addressed(message, BOT_ID, USERNAME)


def test_mention_inside_a_topic_is_addressed_despite_the_creation_reply() -> None:
    """A topic message that mentions the bot is addressed, whatever it implicitly replies to."""
    message = make_message(chat=FORUM, message_thread_id=TOPIC, is_topic_message=True,
                           reply_to_message=topic_start(ANN), text="@yuanqi_test_bot hi")
    assert addressed(message, BOT_ID, USERNAME)


SERVICE = [
    pytest.param({"pinned_message": message_dict(message_id=5, text="old")}, id="pinned_message"),
    pytest.param({"new_chat_title": "Renamed"}, id="new_chat_title"),
    pytest.param({"new_chat_members": [BOB]}, id="new_chat_members"),
    pytest.param({"left_chat_member": BOB}, id="left_chat_member"),
    pytest.param({"forum_topic_created": {"name": "Ideas", "icon_color": 7322096}}, id="forum_topic_created"),
    pytest.param({"forum_topic_closed": {}}, id="forum_topic_closed"),
    pytest.param({"video_chat_started": {}}, id="video_chat_started"),
    pytest.param({"video_chat_scheduled": {"start_date": 1_750_000_000}}, id="video_chat_scheduled"),
    pytest.param({"boost_added": {"boost_count": 4}}, id="boost_added"),
    pytest.param({"message_auto_delete_timer_changed": {"message_auto_delete_time": 60}}, id="auto_delete"),
    pytest.param({"migrate_to_chat_id": -1001234567890}, id="migrate_to_chat_id"),
    pytest.param({"write_access_allowed": {}}, id="write_access_allowed"),
]


@pytest.mark.parametrize("chat", [PRIVATE, GROUP], ids=["private", "group"])
@pytest.mark.parametrize("fields", SERVICE)
def test_service_messages_never_address_the_bot(chat: dict[str, Any], fields: dict[str, Any]) -> None:
    """A service message is not a question, in a private chat or as a reply to the bot in a group."""
    message = make_message(chat=chat, reply_to_message=bot_answer(chat=chat), **fields)
    assert not has_content(message)
    assert not addressed(message, BOT_ID, USERNAME)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"text": "hi"}, id="text"),
        pytest.param({"photo": photo_sizes()}, id="photo"),
        pytest.param({"sticker": {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 1,
                                  "height": 1, "is_animated": False, "is_video": False}}, id="sticker"),
        pytest.param({"location": {"latitude": 1.0, "longitude": 2.0}}, id="location"),
        pytest.param({"voice": {"file_id": "v", "file_unique_id": "u", "duration": 1}}, id="voice"),
    ],
)
def test_what_people_send_is_content(fields: dict[str, Any]) -> None:
    """Text, media and other things a person sends are content (stickers get the "can't read" notice)."""
    assert has_content(make_message(chat=PRIVATE, **fields))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"chat": GROUP, "migrate_from_chat_id": -4001}, (-4001, GROUP["id"]), id="in-the-new-chat"),
        pytest.param({"chat": {"id": -4001, "type": "group", "title": "Team"},
                      "migrate_to_chat_id": GROUP["id"]}, (-4001, GROUP["id"]), id="in-the-old-chat"),
        pytest.param({"text": "hello"}, None, id="ordinary-message"),
    ],
)
def test_migration_names_the_old_and_new_chat(fields: dict[str, Any], expected: tuple[int, int] | None) -> None:
    """Both service messages of a group's upgrade give the same (old, new) pair."""
    assert migration(make_message(**fields)) == expected


@pytest.mark.parametrize(
    ("chat", "expected"),
    [
        pytest.param(GROUP, True, id="supergroup"),
        pytest.param({"id": -4001, "type": "group", "title": "Team"}, False, id="basic-group"),
        pytest.param(PRIVATE, False, id="private"),
    ],
)
def test_only_a_supergroup_may_have_an_earlier_id(chat: dict[str, Any], expected: bool) -> None:
    """Aliases are looked up only for supergroups: no other chat can be a migration's result."""
    assert may_have_migrated(make_message(chat=chat, text="hi").chat) is expected


# --- conversation_key ---------------------------------------------------------------------------


@pytest.mark.parametrize("scope", list(Scope), ids=str)
def test_private_conversation_is_the_chat(scope: Scope) -> None:
    """A private chat is one conversation, whatever the group scope."""
    message = make_message(chat=PRIVATE, text="hi")
    assert conversation_key(message, scope) == ConversationKey(chat_id=PRIVATE["id"])


@pytest.mark.parametrize(
    ("fields", "scope", "expected"),
    [
        pytest.param({}, Scope.CHAT, ConversationKey(GROUP["id"]), id="chat"),
        pytest.param({"message_thread_id": 70, "reply_to_message": bot_answer()}, Scope.CHAT,
                     ConversationKey(GROUP["id"]), id="chat-reply-thread-is-not-a-topic"),
        pytest.param({"chat": FORUM, "message_thread_id": TOPIC, "is_topic_message": True},
                     Scope.CHAT, ConversationKey(FORUM["id"], thread_id=TOPIC), id="chat-topic"),
        pytest.param({}, Scope.MEMBER, ConversationKey(GROUP["id"], user_id=ANN["id"]), id="member"),
        pytest.param({"chat": FORUM, "message_thread_id": TOPIC, "is_topic_message": True},
                     Scope.MEMBER, ConversationKey(FORUM["id"], thread_id=TOPIC, user_id=ANN["id"]),
                     id="member-topic"),
    ],
)
def test_group_conversation_key(fields: dict[str, Any], scope: Scope, expected: ConversationKey) -> None:
    """Groups: the chat, its forum topic for topic messages, and the member when scope is MEMBER."""
    assert conversation_key(make_message(text="hi", **fields), scope) == expected


@pytest.mark.parametrize(
    ("chat", "scope", "expected"),
    [
        pytest.param(PRIVATE, Scope.CHAT, ConversationKey(-100555), id="private"),
        pytest.param(GROUP, Scope.CHAT, ConversationKey(-100555), id="group"),
        pytest.param(GROUP, Scope.MEMBER, ConversationKey(-100555, user_id=ANN["id"]), id="member"),
    ],
)
def test_canonical_chat_id_replaces_the_message_chat(
    chat: dict[str, Any], scope: Scope, expected: ConversationKey
) -> None:
    """A canonical chat id (e.g. after a group migrated) is used instead of the message's chat."""
    assert conversation_key(make_message(chat=chat, text="hi"), scope, chat_id=-100555) == expected


# --- strip_mention / without_command ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("@yuanqi_test_bot what is X?", "what is X?", id="leading"),
        pytest.param("what is X? @yuanqi_test_bot", "what is X?", id="trailing"),
        pytest.param("what is @yuanqi_test_bot X?", "what is X?", id="middle-collapses-space"),
        pytest.param("what is @YuanQi_Test_Bot X?", "what is X?", id="mixed-case"),
        pytest.param("@YUANQI_TEST_BOT\nline one\nline two", "line one\nline two", id="keeps-line-breaks"),
        pytest.param("a\n\nb @yuanqi_test_bot", "a\n\nb", id="keeps-blank-line"),
        pytest.param("ask @yuanqi_test_bot2 and @helper_bot", "ask @yuanqi_test_bot2 and @helper_bot",
                     id="other-names-kept"),
        pytest.param("@yuanqi_test_bot", "", id="only-mention"),
    ],
)
def test_strip_mention(text: str, expected: str) -> None:
    """The bot's @name goes (any case); other text, other names and line breaks stay."""
    assert strip_mention(text, USERNAME) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("/ask what is X?", "what is X?", id="plain"),
        pytest.param("/ask@yuanqi_test_bot what is X?", "what is X?", id="addressed-command"),
        pytest.param("/ask   what is X?", "what is X?", id="extra-spaces"),
        pytest.param("/ask\nline one\nline two", "line one\nline two", id="newline-after-command"),
        pytest.param("/ask what\nis X?", "what\nis X?", id="inner-line-break"),
        pytest.param("/ask", "", id="bare-command"),
        pytest.param("/ask@yuanqi_test_bot", "", id="bare-addressed-command"),
        pytest.param("", "", id="empty"),
    ],
)
def test_without_command(text: str, expected: str) -> None:
    """The command word goes; what follows it is kept with its line breaks."""
    assert without_command(text) == expected


# --- question_text ------------------------------------------------------------------------------


def ask(message: Message, *, name_prefix: bool = False, text: str | None = None) -> str:
    return question_text(message, BOT_ID, USERNAME, name_prefix=name_prefix, text=text)


def test_question_is_the_text_without_the_mention() -> None:
    """The bot's mention is not part of the question."""
    assert ask(make_message(text="@yuanqi_test_bot what is 2+2?")) == "what is 2+2?"


def test_question_can_come_from_a_caption() -> None:
    """A photo's caption is the question when there is no text."""
    message = make_message(photo=photo_sizes(), caption="@yuanqi_test_bot what is this?")
    assert ask(message) == "what is this?"


@pytest.mark.parametrize(
    "quoted",
    [
        pytest.param({"text": "The sky is green."}, id="text"),
        pytest.param({"photo": photo_sizes(), "caption": "The sky is green."}, id="caption"),
    ],
)
def test_quoted_message_comes_before_the_question(quoted: dict[str, Any]) -> None:
    """Replying to someone else puts '[Name wrote]' and their words before the question."""
    replied = message_dict(message_id=70, from_=BOB, **quoted)
    message = make_message(reply_to_message=replied, text="@yuanqi_test_bot is this true?")
    assert ask(message) == "[Bob Stone wrote]\nThe sky is green.\n\nis this true?"


def test_quoted_message_alone_is_the_question() -> None:
    """A bare mention in reply to someone else asks about their message."""
    replied = message_dict(message_id=70, from_=BOB, text="The sky is green.")
    message = make_message(reply_to_message=replied, text="@yuanqi_test_bot")
    assert ask(message) == "[Bob Stone wrote]\nThe sky is green."


@pytest.mark.parametrize(
    "replied",
    [
        pytest.param(bot_answer(), id="reply-to-bot"),
        pytest.param(message_dict(message_id=70, from_=BOB), id="quoted-has-no-text"),
    ],
)
def test_nothing_is_quoted_without_someone_elses_words(replied: dict[str, Any]) -> None:
    """A reply to the bot (already in history) or to a textless message adds no quote."""
    message = make_message(reply_to_message=replied, text="and Spain?")
    assert ask(message) == "and Spain?"


def test_topic_creation_message_is_not_quoted() -> None:
    """The topic's first message, implicitly replied to, is not quoted."""
    starter = {**topic_start(BOB), "text": "Ideas for the launch"}
    message = make_message(chat=FORUM, message_thread_id=TOPIC, is_topic_message=True,
                           reply_to_message=starter, text="@yuanqi_test_bot any ideas?")
    assert ask(message) == "any ideas?"


@pytest.mark.parametrize(
    ("name_prefix", "expected"),
    [
        pytest.param(True, "Ann: what is 2+2?", id="asked"),
        pytest.param(False, "what is 2+2?", id="not-asked"),
    ],
)
def test_speaker_name_is_prefixed_only_when_asked(name_prefix: bool, expected: str) -> None:
    """In shared group conversations the speaker's name tells the agent who asks."""
    assert ask(make_message(text="@yuanqi_test_bot what is 2+2?"), name_prefix=name_prefix) == expected


def test_name_prefix_goes_before_the_quote() -> None:
    """With a name prefix and a quote, the name leads the whole question."""
    replied = message_dict(message_id=70, from_=BOB, text="The sky is green.")
    message = make_message(reply_to_message=replied, text="@yuanqi_test_bot true?")
    assert ask(message, name_prefix=True) == "Ann: [Bob Stone wrote]\nThe sky is green.\n\ntrue?"


def test_empty_question_gets_no_name_prefix() -> None:
    """A bare mention is an empty question, not just a name."""
    assert ask(make_message(text="@yuanqi_test_bot"), name_prefix=True) == ""


def test_text_override_replaces_the_message_text() -> None:
    """/ask passes its argument as the text, so the command word is not in the question."""
    message = make_message(text="/ask@yuanqi_test_bot what is 2+2?")
    assert ask(message, text=without_command(message.text or "")) == "what is 2+2?"


# --- attachments / has_media --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_bytes", "file_id", "size"),
    [
        pytest.param(20 * MB, "AgACAgPHOTO-1280", 140_000, id="largest-fits"),
        pytest.param(100_000, "AgACAgPHOTO-800", 61_000, id="largest-within-limit"),
        pytest.param(61_000, "AgACAgPHOTO-800", 61_000, id="limit-is-inclusive"),
        pytest.param(1_000, "AgACAgPHOTO-90", 1_200, id="none-fit-smallest"),
    ],
)
def test_photo_is_its_largest_size_within_the_limit(max_bytes: int, file_id: str, size: int) -> None:
    """Of a photo's sizes the largest that fits is sent; if none fits, the smallest."""
    message = make_message(chat=PRIVATE, photo=photo_sizes())
    assert attachments(message, BOT_ID, max_bytes) == [Attachment(file_id, "image", size)]


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        pytest.param("application/pdf", "pdf", id="pdf"),
        pytest.param("application/msword", "doc", id="msword"),
        pytest.param("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "doc",
                     id="docx"),
        pytest.param("text/plain", "txt", id="plain-text"),
        pytest.param("text/markdown", "txt", id="markdown"),
        pytest.param("image/png", "image", id="png"),
        pytest.param("image/webp", "image", id="webp"),
    ],
)
def test_document_kind_comes_from_its_mime_type(mime: str, kind: str) -> None:
    """Documents the agent can read are typed by MIME type."""
    message = make_message(chat=PRIVATE, document=document(mime))
    assert attachments(message, BOT_ID, 20 * MB) == [Attachment("BQACAgDOC-1", kind, 2_048)]


@pytest.mark.parametrize(
    "mime",
    [
        pytest.param("application/zip", id="zip"),
        pytest.param("application/octet-stream", id="octet-stream"),
        pytest.param(None, id="no-mime"),
    ],
)
def test_unknown_documents_are_not_attached(mime: str | None) -> None:
    """A document of an unknown type gives no attachment."""
    assert attachments(make_message(chat=PRIVATE, document=document(mime)), BOT_ID, 20 * MB) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"voice": VOICE}, Attachment("AwACAgVOICE-1", "audio", 9_000), id="voice"),
        pytest.param({"audio": AUDIO}, Attachment("CQACAgAUDIO-1", "audio", 3_000_000), id="audio"),
        pytest.param({"video": VIDEO}, Attachment("BAACAgVIDEO-1", "video", 1_500_000), id="video"),
    ],
)
def test_sound_and_video_attachments(fields: dict[str, Any], expected: Attachment) -> None:
    """Voice notes and audio files are audio; videos are video."""
    assert attachments(make_message(chat=PRIVATE, **fields), BOT_ID, 20 * MB) == [expected]


def test_text_message_has_no_attachments() -> None:
    """Plain text carries no files."""
    assert attachments(make_message(text="hi"), BOT_ID, 20 * MB) == []


def test_quoted_photo_comes_before_the_messages_own() -> None:
    """Quoting someone else's photo attaches it too, first."""
    replied = message_dict(message_id=70, from_=BOB, photo=photo_sizes("AgACAgQUOTED"))
    message = make_message(reply_to_message=replied, photo=photo_sizes(),
                           caption="@yuanqi_test_bot compare these")
    assert attachments(message, BOT_ID, 20 * MB) == [
        Attachment("AgACAgQUOTED-1280", "image", 140_000),
        Attachment("AgACAgPHOTO-1280", "image", 140_000),
    ]


def test_quoted_document_is_attached() -> None:
    """Quoting someone else's PDF with a question attaches the PDF."""
    replied = message_dict(message_id=70, from_=BOB, document=document("application/pdf"))
    message = make_message(reply_to_message=replied, text="@yuanqi_test_bot summarise this")
    assert attachments(message, BOT_ID, 20 * MB) == [Attachment("BQACAgDOC-1", "pdf", 2_048)]


IN_TOPIC = {"chat": FORUM, "message_thread_id": TOPIC, "is_topic_message": True}


@pytest.mark.parametrize(
    ("replied", "where"),
    [
        pytest.param(bot_answer(photo=photo_sizes("AgACAgBOT")), {}, id="bots-own-photo"),
        pytest.param({**topic_start(BOB), "photo": photo_sizes("AgACAgTOPIC")}, IN_TOPIC,
                     id="topic-creation"),
    ],
)
def test_photo_of_a_message_not_quoted_is_not_attached(
    replied: dict[str, Any], where: dict[str, Any]
) -> None:
    """Replying to the bot (or to a topic's first message) does not re-attach that message's photo."""
    message = make_message(reply_to_message=replied, text="and this?", **where)
    assert attachments(message, BOT_ID, 20 * MB) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"document": document("application/zip")}, True, id="document"),
        pytest.param({"voice": VOICE}, True, id="voice"),
        pytest.param({"audio": AUDIO}, True, id="audio"),
        pytest.param({"video": VIDEO}, True, id="video"),
        pytest.param({"video_note": VIDEO_NOTE}, True, id="video-note"),
        pytest.param({"text": "hi"}, False, id="text"),
        pytest.param({"sticker": {"file_id": "CAACAgSTICKER", "file_unique_id": "AgADST", "width": 512,
                                  "height": 512, "is_animated": False, "is_video": False,
                                  "type": "regular"}}, False, id="sticker"),
    ],
)
def test_has_media(fields: dict[str, Any], expected: bool) -> None:
    """Documents, sound and video count as media the bot may not support; text and stickers do not."""
    assert has_media(make_message(chat=PRIVATE, **fields)) is expected


@pytest.mark.parametrize(("texts", "limit", "expected"), [
    (["a", "b"], 100, ("a\n\nb", 0)),
    (["aaaa", "bbbb", "cccc"], 10, ("aaaa\n\nbbbb", 1)),
    (["x" * 50, "y"], 10, ("x" * 50, 1)),
], ids=["all fit", "last left out", "first always kept"])
def test_combined_messages_fit_the_input_limit(texts: list[str], limit: int, expected: tuple[str, int]) -> None:
    """Messages combined into one turn are kept whole while they fit; the count left out is told."""
    assert combine(texts, limit) == expected
