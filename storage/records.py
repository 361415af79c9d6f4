"""Versioned JSON records for stored turns: pure encode/decode."""

from __future__ import annotations

import json
from typing import Any

from storage.base import Turn

VERSION = 1


class RecordError(ValueError):
    """A stored record that this version cannot read."""


def dump_turn(turn: Turn) -> str:
    record: dict[str, Any] = {"v": VERSION, "q": turn.question, "a": turn.answer, "t": turn.at}
    if turn.images:
        record["i"] = list(turn.images)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def load_turn(raw: str | bytes) -> Turn:
    try:
        record: Any = json.loads(raw)
    except ValueError as exc:
        raise RecordError("not JSON") from exc
    if not isinstance(record, dict) or record.get("v") != VERSION:
        raise RecordError("unknown record version")
    question, answer, at = record.get("q"), record.get("a"), record.get("t")
    if not isinstance(question, str) or not isinstance(answer, str):
        raise RecordError("missing text")
    if not isinstance(at, int | float):
        raise RecordError("missing time")
    images = record.get("i", [])
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise RecordError("bad image list")
    return Turn(question=question, answer=answer, at=float(at), images=tuple(images))
