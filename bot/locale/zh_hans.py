"""Simplified Chinese messages, in mainland usage."""

from __future__ import annotations

from bot.locale.keys import Text

TEXTS: dict[Text, str] = {
    Text.START: (
        "你好！我是连接腾讯元器智能体的 Telegram 机器人。\n\n"
        "直接给我发消息，智能体的回答会边生成边显示。我会记住我们的对话，发送 /new 可以开始新对话。\n\n"
        "发送 /help 查看全部命令以及在群里的用法。"
    ),
    Text.HELP: (
        "发送消息（或图片），智能体就会回答，回答会边生成边显示。\n\n"
        "命令：\n"
        "/start - 机器人介绍\n"
        "/help - 使用帮助\n"
        "/ask 问题 - 提问（在群里很方便）\n"
        "/new - 开始新对话\n"
        "/reset - 同 /new，清空当前对话\n"
        "/retry - 重新生成上一个回答\n"
        "/stop - 停止正在生成的回答（也可以点回答下方的 ⏹ 停止 按钮）\n"
        "/usage - 查看已用 token\n\n"
        "在群里：\n"
        "• @我（提到我的用户名）、回复我的消息，或者用 /ask 问题 来提问。\n"
        "• Telegram 默认开启隐私模式，这时我只能看到命令、@我的消息和对我的回复，这样就够用了。\n"
        "• 每个人的问题，我都会以回复的形式回答。"
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
    Text.STOPPED: "⏹ 已停止。",
    Text.STOP_BUTTON: "⏹ 停止",
    Text.STOP_OK: "正在停止…",
    Text.STOP_NOTHING: "当前没有正在生成的回答。",
    Text.STOP_NOT_YOURS: "只有提问者（或群管理员）可以停止这个回答。",
    Text.TOOL_TOOL: "🔧 正在使用 {name}…",
    Text.TOOL_PLUGIN: "🧩 正在运行 {name} 插件…",
    Text.TOOL_KNOWLEDGE: "🔎 正在检索知识库…",
    Text.TOOL_WORKFLOW: "⚙️ 正在运行 {name} 工作流…",
    Text.TOOL_WORKING: "⚙️ 正在处理…",
    Text.TOOL_FAILED: "⚠️ {name} 调用失败，智能体将跳过它继续回答。",
    Text.RETRY_NOTHING: "还没有可以重新生成的回答，先问我点什么吧。",
    Text.CMD_START: "机器人介绍",
    Text.CMD_HELP: "使用帮助",
    Text.CMD_ASK: "提问（在群里很方便）",
    Text.CMD_NEW: "开始新对话",
    Text.CMD_RESET: "清空当前对话",
    Text.CMD_RETRY: "重新生成上一个回答",
    Text.CMD_STOP: "停止正在生成的回答",
    Text.CMD_USAGE: "查看已用 token",
}
