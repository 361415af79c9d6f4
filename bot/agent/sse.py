"""Pure: a byte-level Server-Sent Events splitter for the agent's stream.

Fed the response body as it arrives, in chunks of any size, it returns the ``data`` of every
event completed so far, as bytes (multi-line data joined with newlines), so a network read that
carries twenty events costs one call, not twenty line decodes. It keeps the tolerance the agent
needs (see shared/docs/yuanqi-api.md): LF, CRLF or lone CR line ends, a chunk boundary anywhere
(inside a CRLF or a multi-byte UTF-8 character too), ``data:`` with or without its space,
comment lines and other fields ignored, and an event still open when the stream ends.
"""

from __future__ import annotations

_CR, _LF = b"\r", b"\n"


class SseSplitter:
    def __init__(self) -> None:
        self._rest = b""  # the start of a line not yet ended
        self._data: list[bytes] = []  # data lines of the event being read

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of each event that ``chunk`` completes, in order."""
        buffer = self._rest + chunk if self._rest else chunk
        held = b""
        if _CR in buffer:
            if buffer.endswith(_CR):  # maybe half of a CRLF: decide once the next byte is here
                buffer, held = buffer[:-1], _CR
            buffer = buffer.replace(b"\r\n", _LF).replace(_CR, _LF)
        lines = buffer.split(_LF)
        self._rest = lines.pop() + held
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:  # a blank line ends the event
                if data:
                    events.append(data[0] if len(data) == 1 else _LF.join(data))
                    data = self._data = []
            elif line.startswith(b"data"):
                if line[4:5] == b":":
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif len(line) == 4:  # "data" alone: a data line with an empty value
                    data.append(b"")
        return events

    def close(self) -> list[bytes]:
        """The end of the stream: an event left open (no blank line after it) still counts."""
        events = self.feed(b"\n\n" if self._rest else b"\n")
        self._rest, self._data = b"", []
        return events
