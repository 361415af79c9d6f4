"""Thin PTB callbacks: decide whether and how the bot is addressed, then hand over to ChatService."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Bot, Chat, ChatMember, Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.agent.media import MediaParts
from bot.chat import ChatService
from bot.question import Question
from bot.texts import Text, duration, say
from bot.tg import incoming
from bot.tg.access import Access
from bot.tg.incoming import Attachment, Scope
from bot.tg.parts import TurnParts
from bot.tg.stopping import Stopping, stop_handlers
from bot.tg.target import TelegramTarget
from storage import ConversationKey, RedisChatRegistry, RedisUsage, StorageError

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
DENIAL_TTL = 30 * 86_400
#: Seconds between attempts to record a group's move to a supergroup while Redis fails (~15 s).
MIGRATION_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
NEW_MESSAGES = filters.UpdateType.MESSAGE


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-user limits; None means unlimited."""

    daily_tokens: int | None = None
    per_minute: int | None = None


@dataclass(frozen=True)
class Intake:
    """What the handlers need besides the update."""

    chat: ChatService
    registry: RedisChatRegistry
    access: Access
    parts: TurnParts
    media: MediaParts
    scope: Scope
    reset_admins_only: bool
    max_media_bytes: int
    usage: RedisUsage
    quotas: Quotas = Quotas()
    max_input_chars: int = 8_000
    stopping: Stopping | None = None


def language_of(message: Message) -> str | None:
    return message.from_user.language_code if message.from_user else None


def _target(message: Message, context: Context, *, reply: bool | None = None) -> TelegramTarget:
    return target_for(message, context.bot, reply=reply)


def target_for(message: Message, bot: Bot, *, reply: bool | None = None) -> TelegramTarget:
    """Where answers to ``message`` go: its chat and topic; in groups, as a reply to it."""
    in_group = not incoming.is_private(message)
    return TelegramTarget(
        bot, message.chat_id,
        reply_to=message.message_id if (in_group if reply is None else reply) else None,
        thread_id=incoming.thread_of(message),
    )


def make_handlers(intake: Intake) -> list[BaseHandler[Update, Context, None]]:
    """The bot's handlers; within the group the first match wins."""
    chat = intake.chat

    async def origin_of(chat: Chat) -> int:
        """The chat's first id (a supergroup's id as a group): its history, user_id and access go by it."""
        if not incoming.may_have_migrated(chat):
            return chat.id
        try:
            return await intake.registry.canonical(chat.id)
        except StorageError as exc:  # ChatService reports the outage when it loads history
            log.warning("could not resolve chat aliases: %s", exc)
            return chat.id

    async def allowed(chat: Chat, user: int | None) -> bool:
        """By the chat's id, or by its first id (looked up only when the first check fails)."""
        access = intake.access
        return access.allows(chat.id, user) or access.allows(chat.id, user, origin=await origin_of(chat))

    async def key_of(message: Message) -> ConversationKey:
        return incoming.conversation_key(message, intake.scope, await origin_of(message.chat))

    async def admitted(message: Message, context: Context) -> bool:
        user = message.from_user.id if message.from_user else None
        if await allowed(message.chat, user):
            return True
        log.info("ignored a message from a chat that is not allowed")
        if incoming.is_private(message):
            try:
                first = await intake.registry.first_denial(message.chat_id, DENIAL_TTL)
            except StorageError as exc:
                log.warning("could not record a denial: %s", exc)
                first = False
            if first:
                await chat.notify(_target(message, context), say(Text.NOT_ALLOWED, language_of(message)))
        return False

    async def notify(message: Message, context: Context, text: Text) -> None:
        await chat.notify(_target(message, context), say(text, language_of(message)))

    async def start(update: Update, context: Context) -> None:
        """Say what the bot is."""
        if (message := update.effective_message) and await admitted(message, context):
            await notify(message, context, Text.START)

    async def help_(update: Update, context: Context) -> None:
        """List the commands."""
        if (message := update.effective_message) and await admitted(message, context):
            await notify(message, context, Text.HELP)

    async def reset(update: Update, context: Context) -> None:
        """Forget this conversation (in groups: maybe admins only) and confirm."""
        message = update.effective_message
        if not message or not await admitted(message, context):
            return
        if intake.reset_admins_only and not await is_admin(message, context):
            await notify(message, context, Text.ADMINS_ONLY)
            return
        await chat.reset(await key_of(message))
        await notify(message, context, Text.RESET)

    async def retry(update: Update, context: Context) -> None:
        """/retry: ask the last question again; the new answer replaces the old one in history."""
        message = update.effective_message
        if not message or not await admitted(message, context):
            return
        key = await key_of(message)
        try:
            last = await chat.last_turn(key)
        except StorageError as exc:
            log.error("history unavailable: %s", exc)
            await notify(message, context, Text.STORAGE)
            return
        if last is None:
            await notify(message, context, Text.RETRY_NOTHING)
            return
        if await over_limit(message, context):
            return
        user = message.from_user.id if message.from_user else None
        images = tuple(Attachment(file_id, "image") for file_id in last.images)
        question = Question(key, last.question, language_of(message), images, user_id=user, replaces=last)
        await chat.answer(question, _target(message, context))

    async def usage(update: Update, context: Context) -> None:
        """Tokens the user has used today and in total (the agent is not called)."""
        message = update.effective_message
        if not message or not message.from_user or not await admitted(message, context):
            return
        try:
            figures = await intake.usage.usage(message.from_user.id)
        except StorageError as exc:
            log.error("usage unavailable: %s", exc)
            await notify(message, context, Text.STORAGE)
            return
        limit = intake.quotas.daily_tokens
        text = Text.USAGE if limit is None else Text.USAGE_LIMITED
        language = language_of(message)
        await chat.notify(_target(message, context), say(
            text, language, today=figures.today, total=figures.total, limit=limit
        ))

    async def over_limit(message: Message, context: Context) -> bool:
        """Refuse politely when the user is over a quota: one Redis round trip, no agent call."""
        quotas, user = intake.quotas, message.from_user
        if user is None or (quotas.daily_tokens is None and quotas.per_minute is None):
            return False
        try:
            verdict = await intake.usage.admit(
                user.id, daily_tokens=quotas.daily_tokens, per_minute=quotas.per_minute
            )
        except StorageError as exc:  # the turn itself reports the outage
            log.warning("could not check quotas: %s", exc)
            return False
        if verdict.allowed:
            return False
        log.info("refused a message over the %s quota", verdict.reason)
        language = language_of(message)
        tokens = verdict.reason == "tokens"
        await chat.notify(_target(message, context), say(
            Text.LIMIT_TOKENS if tokens else Text.LIMIT_RATE, language,
            limit=quotas.daily_tokens if tokens else quotas.per_minute,
            wait=duration(verdict.reset_in, language),
        ))
        return True

    async def ask(update: Update, context: Context) -> None:
        """/ask question: the explicit way to address the bot in a group."""
        if (message := update.effective_message) and await admitted(message, context):
            await answer(message, context, incoming.without_command(message.text or ""))

    async def on_message(update: Update, context: Context) -> None:
        """Anything else: answered in private chats, and in groups when mentioned or replied to."""
        message = update.effective_message
        if message is None:
            return
        if moved := incoming.migration(message):
            await record_migration(intake.registry, *moved)
            return
        bot_id, username = context.bot.id, context.bot.username
        parts = intake.parts.gather(message)
        if message.media_group_id is None:  # messages combined into one turn: those for the bot
            parts = [m for m in parts if incoming.addressed(m, bot_id, username)]
            if not parts:
                return
            message = parts[0]
        elif not incoming.addressed(message, bot_id, username):
            return
        if await admitted(message, context):
            await answer(message, context, None, parts)

    async def answer(
        message: Message, context: Context, text: str | None, parts: list[Message] | None = None
    ) -> None:
        parts = parts or intake.parts.gather(message)
        bot_id, username = context.bot.id, context.bot.username
        files = [a for m in parts for a in incoming.attachments(m, bot_id, intake.max_media_bytes)]
        if any(not intake.media.accepts(a.kind) for a in files) or (
            not files and incoming.has_media(message)
        ):
            await notify(message, context, Text.UNSUPPORTED)
            return
        prefix = not incoming.is_private(message) and intake.scope is Scope.CHAT
        if message.media_group_id is None and len(parts) > 1:  # sent while the last turn ran
            texts = [incoming.question_text(m, bot_id, username, name_prefix=prefix) for m in parts]
            question_text, unread = incoming.combine(texts, intake.max_input_chars)
            if unread:
                await chat.notify(_target(message, context), say(
                    Text.NOT_ALL_READ, language_of(message), read=len(texts) - unread,
                    unread=unread, limit=intake.max_input_chars,
                ))
        else:
            captioned = next((m for m in parts if m.caption), message)
            question_text = incoming.question_text(
                captioned, bot_id, username, text=text, name_prefix=prefix
            )
        if not files and not question_text:
            await notify(message, context, Text.UNSUPPORTED if _is_other(message) else Text.EMPTY_QUESTION)
            return
        if await over_limit(message, context):
            return
        user = message.from_user.id if message.from_user else None
        question = Question(
            await key_of(message), question_text, language_of(message), tuple(files), user_id=user
        )
        await chat.answer(question, _target(message, context))

    async def bot_membership(update: Update, context: Context) -> None:
        """Leave groups that are not allowed as soon as the bot is added."""
        change = update.my_chat_member
        if change is None or change.chat.type == "private":
            return
        joined = change.new_chat_member.status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)
        if joined and not await allowed(change.chat, change.from_user.id):
            log.info("added to a group that is not allowed; leaving")
            try:
                await context.bot.leave_chat(change.chat.id)
            except TelegramError as exc:
                log.warning("could not leave a group: %s", exc.message)

    async def said(update: Update, context: Context, text: Text) -> None:
        if message := update.effective_message:
            await notify(message, context, text)

    stopping = stop_handlers(intake.stopping, said) if intake.stopping is not None else []
    return [
        CommandHandler("start", start, NEW_MESSAGES),
        CommandHandler("help", help_, NEW_MESSAGES),
        CommandHandler(["reset", "new"], reset, NEW_MESSAGES),
        CommandHandler("ask", ask, NEW_MESSAGES),
        CommandHandler("usage", usage, NEW_MESSAGES),
        CommandHandler("retry", retry, NEW_MESSAGES),
        *stopping,
        MessageHandler(NEW_MESSAGES, on_message),
        ChatMemberHandler(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER),
    ]


async def record_migration(registry: RedisChatRegistry, old: int, new: int) -> None:
    """Let the supergroup's id continue the group's conversations, retrying while Redis fails.

    Telegram says it twice (in the old and the new chat); recording it is idempotent.
    """
    for attempt, delay in enumerate((*MIGRATION_RETRY_DELAYS, None), start=1):
        try:
            await registry.migrate(old, new)
        except StorageError as exc:
            if delay is None:
                log.error("could not record a group's migration to a supergroup (%s); its earlier "
                          "conversation will not be continued", exc)
                return
            log.warning("could not record a group's migration to a supergroup yet (%s); trying again "
                        "in %.1f s (%d/%d)", exc, delay, attempt, len(MIGRATION_RETRY_DELAYS))
            await asyncio.sleep(delay)
        else:
            log.info("a group moved to a supergroup; its conversations moved with it")
            return


def _is_other(message: Message) -> bool:
    """Stickers, polls, locations and the like: content the agent cannot be given."""
    return not (message.text or message.caption or message.photo)


async def is_admin(message: Message, context: Context) -> bool:
    if incoming.is_private(message) or message.from_user is None:
        return True
    try:
        member = await context.bot.get_chat_member(message.chat_id, message.from_user.id)
    except TelegramError as exc:
        log.warning("could not check admin status: %s", exc.message)
        return False
    return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
