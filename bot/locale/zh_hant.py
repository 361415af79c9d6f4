"""Traditional Chinese messages, written for Taiwan and Hong Kong readers (not converted from Simplified)."""

from __future__ import annotations

from bot.locale.keys import Text

TEXTS: dict[Text, str] = {
    Text.START: (
        "你好！我是連接騰訊元器 AI 代理的 Telegram 機器人。\n\n"
        "直接傳訊息給我，AI 代理的回答會邊產生邊顯示。我會記住我們的對話，傳送 /new 即可開始新的對話。\n\n"
        "傳送 /help 可查看所有指令，以及在群組中的使用方式。"
    ),
    Text.HELP: (
        "傳送訊息（或圖片），AI 代理就會回答，回答會邊產生邊顯示。\n\n"
        "指令：\n"
        "/start - 機器人簡介\n"
        "/help - 使用說明\n"
        "/ask 問題 - 提問（在群組中很方便）\n"
        "/new - 開始新的對話\n"
        "/reset - 同 /new，重設目前的對話\n"
        "/retry - 重新產生上一則回答\n"
        "/stop - 停止正在產生的回答（也可以按回答下方的 ⏹ 停止 按鈕）\n"
        "/usage - 查看已使用的 token\n\n"
        "在群組中：\n"
        "• 提及我（@ 加上我的使用者名稱）、回覆我的訊息，或使用 /ask 問題 來提問。\n"
        "• Telegram 預設開啟隱私模式，此時我只看得到指令、提及我的訊息和回覆我的訊息，這樣就夠了。\n"
        "• 每個人的問題，我都會以回覆的方式回答。"
    ),
    Text.RESET: "已重設對話，下一則訊息將開始新的對話。",
    Text.SENSITIVE: "這則回答被內容安全機制攔下了。換個方式提問也許就可以。",
    Text.TOOL_FAIL: "AI 代理使用的工具發生錯誤，請稍後再試。",
    Text.BUSY: "AI 代理目前忙碌中或無法連線，請一分鐘後再試。",
    Text.TIMEOUT: "AI 代理回答逾時，你可以重新傳送訊息。",
    Text.REJECTED: "AI 代理服務拒絕了這個請求。重試也沒有用，請聯絡機器人的管理員。",
    Text.BROKEN: "AI 代理傳回了無法解讀的回答，請再試一次。",
    Text.INTERRUPTED: "回答中斷了，重新傳送訊息即可重試。",
    Text.EMPTY: "AI 代理傳回了空白的回答，請再試一次。",
    Text.UNSUPPORTED: "我無法讀取這類訊息。請傳送文字或圖片（可附上說明）。",
    Text.TOO_LONG: "訊息太長（{length} 字，上限 {limit} 字），請精簡後再傳送。",
    Text.STORAGE: "機器人的資料儲存服務暫時無法使用，目前無法回答，請稍後再試。",
    Text.MEDIA_TOO_LARGE: "檔案太大，無法轉交給 AI 代理，請傳送較小的檔案。",
    Text.MEDIA_FAILED: "無法從 Telegram 取得這個檔案，請重新傳送。",
    Text.NOT_ALLOWED: "抱歉，這是私人機器人，你不在允許使用的名單中。",
    Text.ADMINS_ONLY: "只有群組管理員可以重設這個對話。",
    Text.EMPTY_QUESTION: "請在提及我之後寫下你的問題，或直接回覆我的訊息。",
    Text.QUEUED: "⏳ 目前提問的人很多，你的問題正在排隊，下一個就輪到你。",
    Text.QUEUED_AHEAD: "⏳ 目前提問的人很多，你的問題正在排隊，前面還有 {ahead} 人。",
    Text.LOST: "機器人在處理這則訊息時重新啟動了，因此未能回答。請重新傳送。",
    Text.INTERNAL: "機器人內部發生錯誤，請稍後再試。",
    Text.USAGE: "今日（UTC）已使用 token：{today}。累計：{total}。",
    Text.USAGE_LIMITED: "今日（UTC）已使用 token：{today} / {limit}。累計：{total}。",
    Text.LIMIT_TOKENS: "你今天的 {limit} 個 token 額度已用完，將於 UTC 午夜（{wait}後）重設。",
    Text.LIMIT_RATE: "傳送速度太快了：每分鐘最多 {limit} 則訊息，請 {wait}後再試。",
    Text.NOT_ALL_READ: (
        "你在我回答時傳了多則訊息：前 {read} 則已合併讀取，後 {unread} 則超出長度上限（最多 {limit} 字），"
        "請重新傳送。"
    ),
    Text.STOPPED: "⏹ 已停止。",
    Text.STOP_BUTTON: "⏹ 停止",
    Text.STOP_OK: "正在停止…",
    Text.STOP_NOTHING: "目前沒有正在產生的回答。",
    Text.STOP_NOT_YOURS: "只有提問者（或群組管理員）可以停止這則回答。",
    Text.TOOL_TOOL: "🔧 正在使用 {name}…",
    Text.TOOL_PLUGIN: "🧩 正在執行 {name} 外掛…",
    Text.TOOL_KNOWLEDGE: "🔎 正在搜尋知識庫…",
    Text.TOOL_WORKFLOW: "⚙️ 正在執行 {name} 工作流程…",
    Text.TOOL_WORKING: "⚙️ 處理中…",
    Text.TOOL_FAILED: "⚠️ {name} 執行失敗，AI 代理會略過它繼續回答。",
    Text.RETRY_NOTHING: "目前還沒有可以重新產生的回答，請先問我一個問題。",
    Text.CMD_START: "機器人簡介",
    Text.CMD_HELP: "使用說明",
    Text.CMD_ASK: "提問（在群組中很方便）",
    Text.CMD_NEW: "開始新的對話",
    Text.CMD_RESET: "重設這個對話",
    Text.CMD_RETRY: "重新產生上一則回答",
    Text.CMD_STOP: "停止正在產生的回答",
    Text.CMD_USAGE: "查看已使用的 token",
}
