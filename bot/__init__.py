"""yuanqi-telegram: a Telegram bot service that puts a Tencent Yuanqi agent into Telegram chats."""
