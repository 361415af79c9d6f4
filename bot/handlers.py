"""Thin PTB callbacks: unpack the Update, hand it to ChatService."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.chat import ChatService, Question
from bot.telegram_target import TelegramTarget
from bot.texts import Text, say
from storage import ConversationKey

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def conversation_of(message: Message) -> ConversationKey:
    return ConversationKey(chat_id=message.chat_id)


def target_for(message: Message, context: Context, *, reply: bool = False) -> TelegramTarget:
    return TelegramTarget(
        context.bot, message.chat_id,
        reply_to=message.message_id if reply else None,
        thread_id=message.message_thread_id if message.is_topic_message else None,
    )


def _language(message: Message) -> str | None:
    return message.from_user.language_code if message.from_user else None


def make_handlers(chat: ChatService) -> list[BaseHandler[Update, Context, None]]:
    """The bot's handlers, bound to ``chat``; the order matters (first match wins)."""

    async def start(update: Update, context: Context) -> None:
        """Say what the bot is."""
        message = update.effective_message
        if message:
            await chat.notify(target_for(message, context), say(Text.START, _language(message)))

    async def help_(update: Update, context: Context) -> None:
        """List the commands."""
        message = update.effective_message
        if message:
            await chat.notify(target_for(message, context), say(Text.HELP, _language(message)))

    async def reset(update: Update, context: Context) -> None:
        """Forget the conversation and confirm."""
        message = update.effective_message
        if message:
            await chat.reset(conversation_of(message))
            await chat.notify(target_for(message, context), say(Text.RESET, _language(message)))

    async def text(update: Update, context: Context) -> None:
        """Send the text to the agent and stream the answer."""
        message = update.effective_message
        if message and message.text:
            question = Question(conversation_of(message), message.text, _language(message))
            await chat.answer(question, target_for(message, context))

    async def unsupported(update: Update, context: Context) -> None:
        """Explain that only text is understood (for now)."""
        message = update.effective_message
        if message:
            notice = say(Text.UNSUPPORTED, _language(message))
            await chat.notify(target_for(message, context, reply=True), notice)

    return [
        CommandHandler("start", start, PRIVATE),
        CommandHandler("help", help_, PRIVATE),
        CommandHandler("reset", reset, PRIVATE),
        MessageHandler(PRIVATE & filters.TEXT, text),
        MessageHandler(PRIVATE & ~filters.StatusUpdate.ALL, unsupported),
    ]
