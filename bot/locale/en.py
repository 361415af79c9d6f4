"""English messages."""

from __future__ import annotations

from bot.locale.keys import Text

TEXTS: dict[Text, str] = {
    Text.START: (
        "Hi! I'm a Telegram bridge to a Tencent Yuanqi AI agent.\n\n"
        "Just write to me and the agent's answer appears as it is written. "
        "I remember our conversation; /new starts a new one.\n\n"
        "/help lists the commands and explains how to use me in groups."
    ),
    Text.HELP: (
        "Write a message (or send a photo) and the agent answers; you see the answer as it is "
        "written.\n\n"
        "Commands:\n"
        "/start - what this bot is\n"
        "/help - this help\n"
        "/ask question - ask a question (handy in groups)\n"
        "/new - start a new conversation\n"
        "/reset - the same as /new: forget this conversation\n"
        "/retry - regenerate the last answer\n"
        "/stop - stop the answer being written (or tap ⏹ Stop under it)\n"
        "/usage - tokens you have used\n\n"
        "In groups:\n"
        "• Mention me (@ and my username), reply to one of my messages, or use /ask question.\n"
        "• With Telegram's privacy mode on (the default) I only see commands, mentions of me and "
        "replies to me. That is all I need.\n"
        "• I answer each person's question as a reply to it."
    ),
    Text.RESET: "Done: the conversation is cleared. The next message starts a new one.",
    Text.SENSITIVE: "The agent's content filter blocked this answer. Rephrasing the question may help.",
    Text.TOOL_FAIL: "A tool the agent relies on failed. Please try again in a little while.",
    Text.BUSY: "The agent is busy or unreachable right now. Please try again in a minute.",
    Text.TIMEOUT: "The agent took too long to answer. You can send your message again.",
    Text.REJECTED: (
        "The agent service refused the request. Retrying won't help; please tell the bot's owner."
    ),
    Text.BROKEN: "The agent sent an answer I could not read. Please try again.",
    Text.INTERRUPTED: "The answer was interrupted. Send your message again to retry.",
    Text.EMPTY: "The agent returned an empty answer. Please try again.",
    Text.UNSUPPORTED: "I can't read this kind of message. Send text or a photo (with a caption if you like).",
    Text.TOO_LONG: "That message is too long ({length} characters; at most {limit}). Please shorten it.",
    Text.STORAGE: "My memory store is unavailable, so I can't answer right now. Please try again later.",
    Text.MEDIA_TOO_LARGE: "That file is too large for me to pass on. Please send a smaller one.",
    Text.MEDIA_FAILED: "I couldn't fetch that file from Telegram. Please send it again.",
    Text.NOT_ALLOWED: "Sorry, this bot is private and you are not on its list of users.",
    Text.ADMINS_ONLY: "Only the group's administrators can reset this conversation.",
    Text.EMPTY_QUESTION: "Yes? Write your question after mentioning me, or reply to my message.",
    Text.QUEUED: "⏳ Many people are asking right now; you are next in the queue.",
    Text.QUEUED_AHEAD: "⏳ Many people are asking right now; you are in the queue, {ahead} ahead of you.",
    Text.LOST: (
        "I could not answer this message: the bot restarted while working on it. Please send it again."
    ),
    Text.INTERNAL: "Something went wrong on my side. Please try again in a moment.",
    Text.USAGE: "Tokens used today (UTC): {today}. In total: {total}.",
    Text.USAGE_LIMITED: "Tokens used today (UTC): {today} of your {limit}. In total: {total}.",
    Text.LIMIT_TOKENS: (
        "You have used today's {limit} tokens. The limit resets at midnight UTC, in {wait}."
    ),
    Text.LIMIT_RATE: "Please slow down: at most {limit} messages a minute. Try again in {wait}.",
    Text.NOT_ALL_READ: (
        "You sent several messages while I was answering. I read the first {read} together; the "
        "last {unread} did not fit ({limit} characters at most), so please send those again."
    ),
    Text.STOPPED: "⏹ Stopped.",
    Text.STOP_BUTTON: "⏹ Stop",
    Text.STOP_OK: "Stopping…",
    Text.STOP_NOTHING: "There is no answer being written right now.",
    Text.STOP_NOT_YOURS: "Only the person who asked (or a group admin) can stop this answer.",
    Text.TOOL_TOOL: "🔧 Using {name}…",
    Text.TOOL_PLUGIN: "🧩 Running the {name} plugin…",
    Text.TOOL_KNOWLEDGE: "🔎 Searching the knowledge base…",
    Text.TOOL_WORKFLOW: "⚙️ Running the {name} workflow…",
    Text.TOOL_WORKING: "⚙️ Working on it…",
    Text.TOOL_FAILED: "⚠️ {name} failed; the agent continues without it.",
    Text.RETRY_NOTHING: "There is no answer to regenerate yet. Ask me something first.",
    Text.CMD_START: "What this bot is",
    Text.CMD_HELP: "How to use me",
    Text.CMD_ASK: "Ask a question (handy in groups)",
    Text.CMD_NEW: "Start a new conversation",
    Text.CMD_RESET: "Forget this conversation",
    Text.CMD_RETRY: "Regenerate the last answer",
    Text.CMD_STOP: "Stop the answer being written",
    Text.CMD_USAGE: "Tokens you have used",
}
