"""Server-sent events, decoded byte-exactly.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

`SSEDecoder` is incremental: feed it network reads with `decode()` and call `flush()` at
the end; a whole body is just one read. It works on bytes, so a UTF-8 character split
across reads needs no special care, and only CR LF, CR and LF end a line: U+2028,
U+2029, NEL and friends are ordinary characters inside a payload (which is why this does
not use `str.splitlines()`).

`read()` and `cut()` read a whole body (timed by its network reads) in C where
analyzer/_sse.c was built (setup.py builds it where there is a compiler), and with
`SSEDecoder` where it was not, with the same results: `read()` gives every event, `cut()`
the form the protocols' fast path decodes in one call. tests/test_sse_framing.py holds the
C code to `SSEDecoder` on streams built from every framing feature.

`lenient_events()` reads dumps that are not valid event streams any more (payloads
pretty-printed or wrapped across lines by a log or DevTools); callers use it only when
the strict parse fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

try:  # the C interpretation of a whole body (setup.py builds it where there is a compiler)
    from analyzer import _sse
except ImportError:  # pragma: no cover - the Python decoder gives the same results
    _sse = None  # type: ignore[assignment]
# Only the version this module was written for: an editable install may hold an older build.
_IN_C = _sse if _sse is not None and getattr(_sse, "VERSION", None) == 4 else None
# Tests switch this off to run the Python decoder where the C one was built.
IN_C = True

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
                # Only ASCII digits; and, as browsers keep it, a value that fits 64 bits.
                digits = value.lstrip(b"0")
                if value.isdigit() and len(digits) <= 20 and int(digits or b"0") < 2**64:
                    self._retry = int(digits or b"0")
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


class Stream(NamedTuple):
    """A whole body read: its events, its comments' text and the fields the spec does not know."""

    events: list[Event]
    comments: list[str]
    fields: list[tuple[str, str]]  # (name, value)


def read(body: bytes, reads: Sequence[tuple[float, int]] | None = None) -> Stream:
    """A whole body's events (with `reads`, each read's (t_ms, end_byte), timed as `decode` times them)."""
    if _IN_C is not None and IN_C:
        try:
            found, comments, fields = _IN_C.events(body, reads or None)
        except TypeError:  # reads the C code does not take (an end that is no int): read in Python
            pass
        else:
            return Stream([Event(*event) for event in found], comments, fields)
    return read_in_python(body, reads)


class Cut(NamedTuple):
    """A whole body's events in the form the fast path decodes in one call (see `cut`)."""

    payloads: bytes  # every event's data, each after the one before and an LF
    count: int  # how many events
    times: list[Any]  # each event's arrival (ms), None past the last read or without reads
    done: bool  # the last event was `data: [DONE]` (with `cut(done=True)`), left out
    names: set[str] | None  # the `event:` names the events have; None when none has one
    ids: list[str | None] | None  # each event's last event id; None when no event has one
    comments: list[str]
    fields: list[tuple[str, str]]  # the fields the spec does not know, (name, value)
    unterminated: bool  # the last event had no blank line after it


def cut(body: bytes, reads: Sequence[tuple[float, int]] | None = None, done: bool = False) -> Cut | None:
    """The body's events as one text of JSON values when every event's data is the text of one
    JSON object (it begins with `{` and ends with `}`, past any JSON whitespace: some servers
    write `data:  {…}`, and the spec takes only the first space off), else None.

    The events are those `read` gives, whatever the framing (CR, LF or CRLF line ends,
    comments, `data:` with or without its space, data over several lines, `event:`, `id:`,
    `retry:`, a BOM); with `done`, a last `data: [DONE]` event (chat/completions' end) is left
    out. `payloads` is every event's data, each after the one before and an LF: decoded as
    whitespace-separated values (msgspec's `decode_lines`) it gives `count` values only when
    each event holds exactly one. No value can run across a `}` LF `{` boundary, whatever JSON
    whitespace is around the LF (after a whole value inside an open one, only `,` or a closing
    bracket may follow, not `{`; no JSON string holds a raw LF), and every event holds at least
    one, so `count` values are one each. (A comma-joined array would not prove it: `{"a":[{}`
    and `{}]}` join into one valid value.)
    """
    if _IN_C is not None and IN_C:
        try:
            found = _IN_C.cut(body, done, reads or None)
        except TypeError:  # reads the C code does not take: read in Python
            pass
        else:
            return None if found is None else Cut(*found)
    stream = read_in_python(body, reads)
    events = stream.events
    unterminated = bool(events) and events[-1].unterminated
    ended = done and bool(events) and events[-1].data == b"[DONE]"
    if ended:
        events = events[:-1]
    if not events or not all(_braced(event.data) for event in events):
        return None
    names = {event.event for event in events if event.event is not None}
    ids = [event.id for event in events]
    return Cut(
        payloads=b"\n".join(event.data for event in events),
        count=len(events),
        times=[event.t_ms for event in events],
        done=ended,
        names=names or None,
        ids=None if ids.count(None) == len(ids) else ids,
        comments=stream.comments,
        fields=stream.fields,
        unterminated=unterminated,
    )


_JSON_SPACE = b" \t\n\r"


def _braced(data: bytes) -> bool:
    """Whether an event's data can be one JSON object's text, as far as its ends show (`cut`)."""
    data = data.strip(_JSON_SPACE)
    return len(data) > 1 and data[:1] == b"{" and data[-1:] == b"}"


def read_in_python(body: bytes, reads: Sequence[tuple[float, int]] | None = None) -> Stream:
    """`read` by `SSEDecoder`, where the C code was not built."""
    events, decoder = decode(body, list(reads) if reads else None)
    return Stream(events, [text for _, text in decoder.comments], [(name, value) for _, name, value in decoder.fields])


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
