"""Server-sent events, decoded byte-exactly.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

`SSEDecoder` is incremental: feed it network reads with `decode()` and call `flush()` at
the end; a whole body is just one read. It works on bytes, so a UTF-8 character split
across reads needs no special care, and only CR LF, CR and LF end a line: U+2028,
U+2029, NEL and friends are ordinary characters inside a payload (which is why this does
not use `str.splitlines()`).

`lenient_events()` reads dumps that are not valid event streams any more (payloads
pretty-printed or wrapped across lines by a log or DevTools); callers use it only when
the strict parse fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Event:
    data: bytes
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    # Arrival time (ms since the exchange started) of the read that completed the event.
    t_ms: float | None = None
    # The event was still open when the stream ended (no blank line after it).
    unterminated: bool = False


class SSEDecoder:
    """Turns byte pieces of an event stream into `Event`s."""

    __slots__ = ("_after_cr", "_data", "_event", "_last_id", "_retry", "_started", "_tail", "comments", "fields")

    def __init__(self) -> None:
        self._tail = b""
        self._after_cr = False  # the previous piece ended with CR: a leading LF is its partner
        self._started = False
        self._data: list[bytes] | None = None
        self._event: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None
        self.comments: list[tuple[float | None, str]] = []
        # Lines with a field the spec does not know (`error: ...`): ignored as events, as the
        # spec says, but kept here, since a server that sends one is saying something.
        self.fields: list[tuple[float | None, str, str]] = []

    def decode(self, piece: bytes, t_ms: float | None = None) -> list[Event]:
        """Consume one piece; return the events it completed."""
        if not piece:
            return []
        if self._after_cr and piece[:1] == b"\n":
            piece = piece[1:]
        self._after_cr = piece[-1:] == b"\r"
        buffer = self._tail + piece if self._tail else piece
        if not self._started:
            if len(buffer) < 3 and _BOM.startswith(buffer):
                self._tail = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[3:]
        # Blocks need a clean start: with an event already open (its lines read in an
        # earlier piece), a lone LF here is the blank line that ends it.
        if b"\r" in buffer or self._data is not None or self._event is not None:
            lines = _LINE_END.split(buffer)
            self._tail = lines.pop()
            return self._lines(lines, t_ms)
        # LF only (nearly every real stream): an event is a block between blank lines, and
        # most blocks are a single `data:` line that needs no line-by-line parsing.
        blocks = buffer.split(b"\n\n")
        self._tail = blocks.pop()
        events: list[Event] = []
        for block in blocks:
            if block[:6] == b"data: " and self._data is None and b"\n" not in block:
                events.append(Event(block[6:], None, self._last_id, self._retry, t_ms))
            else:
                events += self._lines([*block.split(b"\n"), b""], t_ms)
        return events

    def flush(self, t_ms: float | None = None) -> list[Event]:
        """End of stream: a last line without its line end still counts, and an event left
        open is returned marked `unterminated` (the spec would drop it; dumps often lack the
        final blank line)."""
        # The tail may hold whole lines (LF-only blocks) and a last line without its end.
        lines = _LINE_END.split(self._tail) if self._tail else []
        if lines and not lines[-1]:
            lines.pop()
        events = self._lines(lines, t_ms)
        self._tail = b""
        if self._data is not None:
            events.append(self._dispatch(t_ms, unterminated=True))
        return events

    def _lines(self, lines: list[bytes], t_ms: float | None) -> list[Event]:
        events: list[Event] = []
        for line in lines:
            if not line:
                if self._data is not None:
                    events.append(self._dispatch(t_ms))
                else:
                    self._event = None
                continue
            if line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                if self._data is None:
                    self._data = [value]
                else:
                    self._data.append(value)
                continue
            if line[0] == 0x3A:  # ':' starts a comment
                self.comments.append((t_ms, line[1:].strip().decode("utf-8", "replace")))
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"event":
                self._event = value.decode("utf-8", "replace")
            elif name == b"id":
                if b"\0" not in value:
                    self._last_id = value.decode("utf-8", "replace")
            elif name == b"retry":
                if value.isdigit():
                    self._retry = int(value)
            elif name == b"data":  # "data" with no colon: an empty data line
                if self._data is None:
                    self._data = [b""]
                else:
                    self._data.append(b"")
            else:  # any other field: no part of an event, as the spec says, but noted
                self.fields.append((t_ms, name.decode("utf-8", "replace"), value.decode("utf-8", "replace")))
        return events

    def _dispatch(self, t_ms: float | None, unterminated: bool = False) -> Event:
        data = self._data or []
        event = Event(
            data=data[0] if len(data) == 1 else b"\n".join(data),
            event=self._event,
            id=self._last_id,
            retry=self._retry,
            t_ms=t_ms,
            unterminated=unterminated,
        )
        self._data = None
        self._event = None
        return event


def decode(body: bytes, chunks: list[tuple[float, int]] | None = None) -> tuple[list[Event], SSEDecoder]:
    """Decode a whole body; with `chunks` ((t_ms, end_byte) per network read) events get arrival times."""
    decoder = SSEDecoder()
    if not chunks:
        events = decoder.decode(body)
        events += decoder.flush()
        return events, decoder
    events = []
    start = 0
    t_ms = None
    for t_ms, end in chunks:
        if end > start:
            events += decoder.decode(body[start:end], t_ms)
            start = end
    if start < len(body):  # bytes past the last recorded read: keep them, untimed
        events += decoder.decode(body[start:], None)
        t_ms = None
    events += decoder.flush(t_ms)
    return events, decoder


_FIELD_START = re.compile(rb"^(data|event|id|retry)(:|$)")
_DONE_SPLIT = re.compile(rb"\s+")


def lenient_events(body: bytes) -> list[Event]:
    """Events from a dump whose payloads were wrapped or pretty-printed across lines.

    A line starting with `data:` opens a payload; following lines that are not SSE fields,
    comments or blank continue it. Continuation lines are joined with a newline (valid
    between JSON tokens); `[DONE` split from its `]` is recognised.
    """
    events: list[Event] = []
    current: list[bytes] | None = None
    event_name: str | None = None

    def close() -> None:
        nonlocal current, event_name
        if current is not None:
            data = b"\n".join(current)
            if _DONE_SPLIT.sub(b"", data) == b"[DONE]":
                data = b"[DONE]"
            events.append(Event(data=data, event=event_name))
        current, event_name = None, None

    if body.startswith(_BOM):
        body = body[3:]
    for line in _LINE_END.split(body):
        match = _FIELD_START.match(line)
        if match:
            name = match.group(1)
            value = line[len(name) + 1 :]
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                if current is not None and event_name is None:
                    close()
                elif current is not None:  # second data line of a named event
                    current.append(value)
                    continue
                current = [value]
            elif name == b"event":
                close()
                event_name = value.decode("utf-8", "replace")
            continue
        if not line.strip():
            continue
        if line[:1] == b":":
            continue
        if current is not None:
            current.append(line)
    close()
    return events
