"""Everything the bot says to users, in English and Chinese (by the user's language_code)."""

from __future__ import annotations

from enum import StrEnum

from bot.errors import AgentError, AgentProtocolError, AgentRejected, AgentTimeout


class Text(StrEnum):
    START = "start"
    HELP = "help"
    RESET = "reset"
    SENSITIVE = "sensitive"
    TOOL_FAIL = "tool_fail"
    BUSY = "busy"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    BROKEN = "broken"
    INTERRUPTED = "interrupted"
    EMPTY = "empty"
    UNSUPPORTED = "unsupported"
    TOO_LONG = "too_long"
    STORAGE = "storage"
    MEDIA_TOO_LARGE = "media_too_large"
    MEDIA_FAILED = "media_failed"
    NOT_ALLOWED = "not_allowed"
    ADMINS_ONLY = "admins_only"
    EMPTY_QUESTION = "empty_question"
    QUEUED = "queued"
    QUEUED_AHEAD = "queued_ahead"
    LOST = "lost"
    USAGE = "usage"
    USAGE_LIMITED = "usage_limited"
    LIMIT_TOKENS = "limit_tokens"
    LIMIT_RATE = "limit_rate"
    NOT_ALL_READ = "not_all_read"
    INTERNAL = "internal"


_EN: dict[Text, str] = {
    Text.START: (
        "Hi! I'm a Telegram bridge to a Tencent Yuanqi AI agent. Just write to me and the "
        "agent's answer will appear as it is written. I remember our conversation; /reset "
        "starts a new one. /help lists the commands."
    ),
    Text.HELP: (
        "Write a message (or send a photo) and the agent answers. In groups, mention me or reply "
        "to my message.\n\n"
        "/start - what this bot is\n/help - this list\n/ask your question - ask (also in groups)\n"
        "/reset - forget our conversation\n/usage - tokens you have used"
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
}

_ZH: dict[Text, str] = {
    Text.START: (
        "你好！我是连接腾讯元器智能体的 Telegram 机器人。直接给我发消息，智能体的回答会边生成边显示。"
        "我会记住我们的对话；/reset 开始新对话，/help 查看命令。"
    ),
    Text.HELP: (
        "发送消息（或图片），智能体就会回答。在群里请提到我或回复我的消息。\n\n"
        "/start - 介绍\n/help - 命令列表\n/ask 问题 - 提问（群里也可用）\n/reset - 清空对话\n"
        "/usage - 已用 token"
    ),
    Text.RESET: "已清空对话，下一条消息将开始新的对话。",
    Text.SENSITIVE: "该回答被内容安全策略拦截。换个说法提问也许可以。",
    Text.TOOL_FAIL: "智能体调用的工具出错了，请稍后再试。",
    Text.BUSY: "智能体当前繁忙或无法连接，请一分钟后再试。",
    Text.TIMEOUT: "智能体回答超时，你可以重新发送消息。",
    Text.REJECTED: "智能体服务拒绝了请求。重试无效，请联系机器人管理员。",
    Text.BROKEN: "智能体返回了无法解析的回答，请重试。",
    Text.INTERRUPTED: "回答中断了，重新发送消息即可重试。",
    Text.EMPTY: "智能体返回了空回答，请重试。",
    Text.UNSUPPORTED: "我无法读取这类消息。请发送文字或图片（可附说明）。",
    Text.TOO_LONG: "消息太长（{length} 字，最多 {limit} 字），请精简后再发。",
    Text.STORAGE: "机器人的存储暂时不可用，现在无法回答，请稍后再试。",
    Text.MEDIA_TOO_LARGE: "文件太大，无法转交给智能体，请发送更小的文件。",
    Text.MEDIA_FAILED: "无法从 Telegram 获取该文件，请重新发送。",
    Text.NOT_ALLOWED: "抱歉，这是一个私有机器人，你不在允许使用的名单中。",
    Text.ADMINS_ONLY: "只有群管理员可以重置本群的对话。",
    Text.EMPTY_QUESTION: "在提到我之后写下你的问题，或直接回复我的消息。",
    Text.QUEUED: "⏳ 当前提问的人较多，你的问题正在排队，下一个就是你。",
    Text.QUEUED_AHEAD: "⏳ 当前提问的人较多，你的问题正在排队，前面还有 {ahead} 个。",
    Text.LOST: "机器人在处理这条消息时重启了，未能回答。请重新发送。",
    Text.INTERNAL: "机器人内部出错了，请稍后再试。",
    Text.USAGE: "今日（UTC）已用 token：{today}。累计：{total}。",
    Text.USAGE_LIMITED: "今日（UTC）已用 token：{today} / {limit}。累计：{total}。",
    Text.LIMIT_TOKENS: "你今天的 {limit} 个 token 额度已用完，将在 UTC 零点（{wait}后）重置。",
    Text.LIMIT_RATE: "发送太快了：每分钟最多 {limit} 条消息，请 {wait}后再试。",
    Text.NOT_ALL_READ: (
        "你在我回答时发了多条消息：前 {read} 条已合并读取，后 {unread} 条超出长度上限（最多 {limit} 字），"
        "请重新发送。"
    ),
}


def is_chinese(language_code: str | None) -> bool:
    return bool(language_code) and str(language_code).lower().startswith("zh")


def say(text: Text, language_code: str | None, **values: object) -> str:
    table = _ZH if is_chinese(language_code) else _EN
    return table[text].format(**values)


def for_error(error: AgentError, *, partial: bool) -> Text:
    """Which message explains this agent failure; ``partial`` when some text was already shown."""
    if isinstance(error, AgentRejected):
        return Text.REJECTED
    if isinstance(error, AgentTimeout):
        return Text.INTERRUPTED if partial else Text.TIMEOUT
    if isinstance(error, AgentProtocolError):
        return Text.INTERRUPTED if partial else Text.BROKEN
    return Text.INTERRUPTED if partial else Text.BUSY


def duration(seconds: float, language_code: str | None) -> str:
    """A wait as people say it: "5 h 12 min", "3 min", "23 s" (or the Chinese equivalent)."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    zh = is_chinese(language_code)
    if hours:
        return f"{hours} 小时 {minutes} 分钟" if zh else f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes + (secs > 0)} 分钟" if zh else f"{minutes + (secs > 0)} min"
    return f"{secs} 秒" if zh else f"{secs} s"
