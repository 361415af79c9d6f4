"""A finished turn on the books: its metrics, its tokens on the user's account, one log line."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.agent.events import Usage
from bot.agent.identity import log_id
from bot.ops.metrics import Metrics
from bot.question import Question, UsageBook
from bot.reply.ports import ReplyStats
from bot.texts import Text
from storage import StorageError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    """How a turn ended: the agent's finish reason (or ours), and what the user is told."""

    reason: str = ""
    usage: Usage | None = None
    note: Text | None = None
    error: str = ""  # the kind of agent error, for metrics
    agent_seconds: float | None = None


class Books:
    def __init__(self, metrics: Metrics, usage: UsageBook, secret: bytes) -> None:
        self._metrics = metrics
        self._usage = usage
        self._secret = secret

    async def close(
        self, question: Question, outcome: Outcome, stats: ReplyStats, *, started: float,
        history: int, stored: bool,
    ) -> None:
        """Metrics for the turn, its tokens on the user's account, and the turn's log line."""
        metrics = self._metrics
        metrics.turns.labels(outcome=outcome.note or outcome.reason or "unknown").inc()
        if outcome.error:
            metrics.agent_errors.labels(kind=outcome.error).inc()
        if outcome.agent_seconds is not None:
            metrics.agent_latency.observe(outcome.agent_seconds)
        if stats.first_text is not None:
            metrics.first_text_latency.observe(stats.first_text - started)
        if stats.final_shown is not None:
            metrics.final_text_latency.observe(stats.final_shown - started)
        tokens = outcome.usage.total_tokens if outcome.usage else 0
        if tokens > 0:
            metrics.tokens.inc(tokens)
            if question.user_id is not None:
                try:
                    await self._usage.record(question.user_id, tokens)
                except StorageError as exc:
                    log.warning("could not count the turn's tokens: %s", exc)
        log.info(
            "turn conv=%s outcome=%s first_text_ms=%s final_ms=%s tokens=%s edits=%d drafts=%d "
            "sends=%d rate_limited=%d history=%d stored=%s",
            log_id(self._secret, question.key), outcome.note or outcome.reason,
            _ms(stats.first_text, started), _ms(stats.final_shown, started),
            tokens or "-", stats.edits, stats.drafts, stats.sends, stats.rate_limited, history, stored,
        )


def _ms(at: float | None, started: float) -> str:
    return "-" if at is None else str(round((at - started) * 1000))
