"""Pure: the status line that says what the agent is doing while it is not writing.

A Yuanqi agent may call tools, plugins, knowledge bases and workflows before (or between) the
parts of its answer. Each call shows as one short line in the user's language, named after the
step, until the answer's text replaces it; a step that reported an error is said plainly.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.agent.events import ToolStep
from bot.texts import Text, say

_CALLING = {"plugin": Text.TOOL_PLUGIN, "knowledge": Text.TOOL_KNOWLEDGE, "workflow": Text.TOOL_WORKFLOW}


@dataclass(slots=True)
class Progress:
    """Follows one answer's steps: a step's result carries no name, so the call's is kept."""

    language: str | None
    _name: str | None = None

    def line(self, step: ToolStep) -> str | None:
        """The status line for ``step``; None to leave the current one (a result that went well)."""
        if not step.done:
            self._name = step.name
            if step.kind == "knowledge":
                return say(Text.TOOL_KNOWLEDGE, self.language)
            if step.name is None:
                return say(Text.TOOL_WORKING, self.language)
            return say(_CALLING.get(step.kind, Text.TOOL_TOOL), self.language, name=step.name)
        if step.failed:
            return say(Text.TOOL_FAILED, self.language, name=self._name or "?")
        return None
