"""Pure: what an incoming Telegram message means for the bot.

Is the bot addressed? Which conversation does it belong to? What text and attachments go to the
agent? No I/O: these read PTB ``Message`` objects, which are plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from telegram import Chat, Message, MessageEntity

from storage import ConversationKey


class Scope(StrEnum):
    CHAT = "chat"  # one shared conversation per group (and per forum topic)
    MEMBER = "member"  # each member has their own conversation inside the group


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the agent should see: Telegram's id for it and what kind of file it is."""

    file_id: str
    kind: str  # "image", "video", "audio", "pdf", "doc", "txt"
    size: int | None = None


def is_private(message: Message) -> bool:
    return message.chat.type == "private"


def thread_of(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def conversation_key(message: Message, scope: Scope, chat_id: int | None = None) -> ConversationKey:
    """Private: the chat. Groups: the chat and forum topic, and the member when scope is MEMBER."""
    chat = message.chat_id if chat_id is None else chat_id
    if is_private(message):
        return ConversationKey(chat_id=chat)
    user = message.from_user.id if scope is Scope.MEMBER and message.from_user else None
    return ConversationKey(chat_id=chat, thread_id=thread_of(message), user_id=user)


def mentions(message: Message, username: str) -> bool:
    """Does the text or caption mention @username (case-insensitive)?"""
    wanted = "@" + username.lower()
    for parsed in (message.parse_entities([MessageEntity.MENTION]),
                   message.parse_caption_entities([MessageEntity.MENTION])):
        if any(text.lower() == wanted for text in parsed.values()):
            return True
    return False


def replies_to_bot(message: Message, bot_id: int) -> bool:
    """A reply to one of the bot's own messages (not to a forum topic's creation message)."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return False
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return False
    return replied.from_user is not None and replied.from_user.id == bot_id


#: What a person can write or send. Anything else is a service message (a pin, a join, a title
#: change, a topic, video chat or boost event, and whatever new kinds Telegram adds).
CONTENT = ("text", "photo", "document", "audio", "voice", "video", "video_note", "animation",
           "sticker", "contact", "location", "venue", "poll", "dice", "game", "story",
           "paid_media", "live_photo", "checklist")


def has_content(message: Message) -> bool:
    """Something someone wrote or sent, as opposed to a service message about the chat."""
    return any(getattr(message, name, None) for name in CONTENT)


def addressed(message: Message, bot_id: int, username: str) -> bool:
    """In groups the bot answers only when mentioned or replied to (commands are routed apart);
    service messages never address it, in private chats either."""
    return has_content(message) and (
        is_private(message) or mentions(message, username) or replies_to_bot(message, bot_id)
    )


def migration(message: Message) -> tuple[int, int] | None:
    """(old, new) chat ids when the message says a group became a supergroup (sent in each of them)."""
    if message.migrate_from_chat_id:
        return message.migrate_from_chat_id, message.chat_id
    if message.migrate_to_chat_id:
        return message.chat_id, message.migrate_to_chat_id
    return None


def may_have_migrated(chat: Chat) -> bool:
    """Only a supergroup can have had an earlier id (a basic group gets a new one when upgraded)."""
    return chat.type == "supergroup"


def strip_mention(text: str, username: str) -> str:
    cleaned = re.sub(rf"@{re.escape(username)}\b[,:]?", " ", text, flags=re.IGNORECASE)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return re.sub(r"[ \t]+\n", "\n", cleaned).strip()


def speaker(message: Message) -> str:
    user = message.from_user
    if user is None:
        return message.chat.effective_name or "someone"
    return user.full_name or user.username or "someone"


def quoted(message: Message, bot_id: int) -> Message | None:
    """The message being replied to, when it is someone else's and not a topic's first message."""
    replied = message.reply_to_message
    if replied is None or replies_to_bot(message, bot_id) or replied.forum_topic_created:
        return None
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return None
    return replied


def without_command(text: str) -> str:
    """``/ask@bot what is X`` -> ``what is X`` (line breaks after the command are kept)."""
    return text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""


def question_text(
    message: Message, bot_id: int, username: str, *, name_prefix: bool, text: str | None = None
) -> str:
    """The text sent to the agent: mention removed, quoted context first, speaker's name prefixed."""
    raw = text if text is not None else (message.text or message.caption or "")
    own = strip_mention(raw, username)
    context = quoted(message, bot_id)
    if context is not None and (context.text or context.caption):
        quote = (context.text or context.caption or "").strip()
        own = f"[{speaker(context)} wrote]\n{quote}\n\n{own}".strip()
    if name_prefix and own:
        own = f"{speaker(message)}: {own}"
    return own


def combine(texts: list[str], limit: int) -> tuple[str, int]:
    """Messages sent while the last turn ran, as one question: whole messages while they fit
    within ``limit`` characters (the first always), and how many were left unread."""
    kept: list[str] = []
    length = 0
    for text in texts:
        extra = len(text) + (2 if kept else 0)
        if kept and length + extra > limit:
            break
        kept.append(text)
        length += extra
    return "\n\n".join(kept), len(texts) - len(kept)


_DOCUMENT_KINDS = {
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "doc",
    "text/plain": "txt",
    "text/markdown": "txt",
}


def attachments(message: Message, bot_id: int, max_bytes: int) -> list[Attachment]:
    """Files in the message and in a quoted message; a photo as its largest size within max_bytes."""
    found: list[Attachment] = []
    for source in (quoted(message, bot_id), message):
        if source is None:
            continue
        if source.photo:
            fitting = [p for p in source.photo if (p.file_size or 0) <= max_bytes] or [source.photo[0]]
            best = max(fitting, key=lambda p: p.width * p.height)
            found.append(Attachment(best.file_id, "image", best.file_size))
        elif source.document and source.document.mime_type:
            mime = source.document.mime_type
            kind = "image" if mime.startswith("image/") else _DOCUMENT_KINDS.get(mime)
            if kind:
                found.append(Attachment(source.document.file_id, kind, source.document.file_size))
        elif source.voice or source.audio:
            media = source.voice or source.audio
            assert media is not None
            found.append(Attachment(media.file_id, "audio", media.file_size))
        elif source.video:
            found.append(Attachment(source.video.file_id, "video", source.video.file_size))
    return found


def has_media(message: Message) -> bool:
    """Files the bot would forward if it could (used to explain what is not supported)."""
    return bool(message.document or message.voice or message.audio or message.video
                or message.video_note)
