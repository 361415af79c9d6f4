"""The live reply: one answer growing in Telegram, rendered, split and paced."""
