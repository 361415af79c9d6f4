"""The agent side: the Yuanqi client and its events, request history, media parts, call slots."""
