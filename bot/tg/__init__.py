"""The Telegram side: updates in (polling, webhook), handlers, what a message means, messages out."""
