"""The bot's own exceptions. Nothing internal is imported here.

::

    BotError
     └── AgentError                (status, detail)
          ├── AgentUnavailable     network failure, 429 or 5xx: trying again later may work
          ├── AgentTimeout         no first event, or no end, within the configured time
          ├── AgentRejected        any other 4xx: our request or credentials; retrying won't help
          └── AgentProtocolError   an answer we cannot read, or an error inside a 200 stream
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class AgentError(BotError):
    """The agent call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail if status is None else f"HTTP {status}: {detail}")
        self.detail = detail
        self.status = status


class AgentUnavailable(AgentError):
    pass


class AgentTimeout(AgentError):
    pass


class AgentRejected(AgentError):
    pass


class AgentProtocolError(AgentError):
    pass
