"""Pure: streamed text made valid Unicode, whatever halves of UTF-16 pairs the deltas held.

The agent's JSON may escape an emoji as two ``\\uXXXX`` halves and split them across two stream
events; Python then holds two lone surrogates, which no encoder accepts. Joined, adjacent halves
become the one character they spell; a half without its partner becomes U+FFFD.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")

#: Shown in place of a half of a pair that has no partner.
REPLACEMENT = "\ufffd"


def well_formed(text: str, *, partial: bool = False) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD.

    With ``partial`` (more text is coming), a trailing high surrogate is left out instead: its
    partner may open the next delta.
    """
    if _SURROGATE.search(text) is None:
        return text
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if partial and joined and "\ud800" <= joined[-1] <= "\udbff":
        joined = joined[:-1]
    return _SURROGATE.sub(REPLACEMENT, joined)
