"""Reading inputs: sniff the format, undo transport and text damage, return `Exchange`s.

Formats, sniffed from the bytes (never from the file name):

- `chatcap-jsonl`: the addon's capture, one HAR entry per line (`_chatcap.schema` = chatcap/1)
- `jsonl`: other JSON lines, each a HAR entry or a `{request, response}` dump
- `har`: a HAR 1.2 file (`{"log": {"entries": [...]}}`)
- `json-dump`: one `{request, response}` object (or a list of them) with string bodies
- `response-json`: a bare response body (a `chat.completion`, an error object, Gemini's array of chunks)
- `raw-http`: pasted HTTP/1.x text, request then response
- `sse-text`: a bare event stream, possibly pretty-printed or wrapped by a log
- `mitmproxy-flows`: a mitmproxy flow file (`mitmdump -w`), read with mitmproxy itself

Any of them may be gzipped (one level: a gzip file inside a gzip file is not unpacked again).

Large inputs stream: JSON lines and flow files are read one record at a time, and a HAR
file past `STREAM_HAR_BYTES` entry by entry, so memory stays near one entry's size;
`stream(paths)` hands each exchange over as it is read (`load` keeps them all). Every
reader is bounded (docs/hostile-input.md): a line or HAR entry past `RECORD_CAP` bytes is
skipped, no body decodes to more than `BODY_CAP` bytes, and a bad record is a `Problem`
(the first few of a file named, then counted), never the end of the batch.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import itertools
import json
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from analyzer.errors import LoadError, NoExchangesFound
from analyzer.ingest import flows, pairs, rawhttp
from analyzer.ingest.text import BODY_CAP, mojibake_notice, repair_mojibake
from analyzer.model import Exchange, Notice, Response

__all__ = [
    "BODY_CAP",
    "RECORD_CAP",
    "ExchangeStream",
    "Exchanges",
    "Problem",
    "file_exchanges",
    "line_pieces",
    "load",
    "parse",
    "piece_exchanges",
    "sniff",
    "sources",
    "stream",
]

# A bare stream starts with a field or a comment; a page that merely quotes an example
# stream (documentation, a chat log) starts with prose and is not a capture.
_SSE_START = re.compile(rb"(?:data|event|id|retry)?:")
_SNIFF_BYTES = 64 * 1024
_BLANK = b"\xef\xbb\xbf \t\r\n"  # a byte-order mark and whitespace, before the first byte that counts
STREAM_HAR_BYTES = 64 * 1024 * 1024  # HAR files larger than this are read entry by entry
# The longest JSON line or HAR entry read: room for a body at the addon's cap (`BODY_CAP`) with
# its JSON escaping and chunk times. A longer one is skipped (and said), never held whole.
RECORD_CAP = 2 * BODY_CAP
PROBLEMS_PER_FILE = 5  # bad lines or entries named one by one; the rest of a file's are counted
PROGRESS_DELAY_S = 0.5  # a progress bar appears only when loading takes longer than this
_READ_BYTES = 1 << 20  # what the streaming readers take from a file at a time
# What a damaged gzip stream raises, whichever layer notices: gzip.BadGzipFile is an OSError.
_UNZIP_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(slots=True, frozen=True)
class Problem:
    """An input (or one record in it) that could not be loaded, and why."""

    source: str
    reason: str
    position: str = ""

    def __str__(self) -> str:
        return f"{self.source} {self.position}".strip() + f": {self.reason}"


class Exchanges(list):
    """A list of `Exchange`s that also remembers what could not be loaded (`problems`)."""

    def __init__(self, items: Iterable[Exchange] = (), problems: Iterable[Problem] = ()) -> None:
        super().__init__(items)
        self.problems: list[Problem] = list(problems)


class _BadRecords:
    """A file's bad lines or entries: the first `PROBLEMS_PER_FILE` named, the rest counted, so a
    million bad lines are six problems, not a million."""

    def __init__(self, source: str, problems: list[Problem], unit: str, units: str) -> None:
        self.source = source
        self.problems = problems
        self.unit, self.units = unit, units
        self.count = 0
        self.last = ""

    def add(self, position: str, reason: str) -> None:
        self.count += 1
        self.last = reason
        if self.count <= PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.source, reason, position))

    def close(self) -> None:
        more = self.count - PROBLEMS_PER_FILE
        if more > 0:
            self.problems.append(
                Problem(self.source, f"... and {more:,} more bad {self.units if more > 1 else self.unit}")
            )


def _exchange(
    obj: dict[str, Any],
    bad: _BadRecords,
    source: str,
    number: int,
    position: str,
    fmt: str,
    raw: bytes | None,
    repaired: bool,
    what: str,
    unit: str,
) -> Exchange | None:
    """One record as the file's `number`th exchange (`raw`: its bytes as read, or None for its
    JSON written again); a value no check foresaw costs this record (a problem naming it),
    never the file."""
    try:
        exchange = pairs.exchange_from_pair(obj, id=_label(source, number), source=source, position=position,
                                            fmt=fmt, raw=_record(obj) if raw is None else raw)  # fmt: skip
    except Exception as exc:
        bad.add(position, f"{what} could not be read ({_failure(exc)}); {unit + ' ' if unit else ''}skipped")
        return None
    if repaired:
        exchange.warnings.append(_SURROGATE_NOTICE)
    return exchange


def _failure(exc: BaseException) -> str:
    """An unexpected exception, as one short line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


# -- sniffing --------------------------------------------------------------------------------------


def sniff(data: bytes) -> str:
    """Name the format of `data` (see the module docstring) or raise NoExchangesFound."""
    return _sniff(io.BytesIO(data))[0]


def _sniff(handle: IO[bytes]) -> tuple[str, bytes]:
    """The format of what `handle` holds, judged by its structure from its start, and the first
    `_SNIFF_BYTES` bytes that count. The handle is left anywhere."""
    start, head = _skip_blank(handle)
    if not head:
        raise NoExchangesFound("<data>", "empty input: no exchanges found")
    if head[:2] == b"\x1f\x8b":
        return "gzip", head
    if flows.looks_like_flows(head):
        return "mitmproxy-flows", head
    if rawhttp.looks_like_http(head):  # its bodies may be binary (still compressed, an image)
        return "raw-http", head
    if b"\0" in head[:4096]:
        raise NoExchangesFound("<data>", "binary data, not a capture: no exchanges found")
    if head[:1] in (b"{", b"["):
        if head[:1] == b"{" and not _looks_like_har(head):
            return _lines_or_json(handle, start, head), head
        return "json", head
    if _SSE_START.match(head):
        return "sse-text", head
    hint = " (it quotes an event stream, but a capture would start with one)" if b"\ndata:" in head else ""
    raise NoExchangesFound("<data>", f"no exchanges found: not a capture (starts with {_preview(head)}){hint}")


def _skip_blank(handle: IO[bytes]) -> tuple[int, bytes]:
    """Where the first byte that is not blank is, and `_SNIFF_BYTES` bytes from there."""
    offset = 0
    while block := handle.read(_SNIFF_BYTES):
        head = block.lstrip(_BLANK)
        if head:
            if len(head) < _SNIFF_BYTES:
                head += handle.read(_SNIFF_BYTES - len(head))
            return offset + len(block) - len(head), head
        offset += len(block)
    return offset, b""


# A line whose start names a request or a response object is a record, whatever its length.
_RECORD_START = re.compile(rb'"(?:request|response)"\s*:\s*\{')


def _lines_or_json(handle: IO[bytes], start: int, head: bytes) -> str:
    """JSON lines when the first line is a JSON object and something follows it, else one JSON
    document. The first line is read whole, however long, up to `RECORD_CAP`; past that its
    start decides (a line that long is then skipped by the line reader, and said)."""
    newline = head.find(b"\n")
    if newline >= 0:
        line, more = head[:newline], not head[newline:].isspace()
    else:
        handle.seek(start)
        line = _line(handle)
        if isinstance(line, int):  # longer than RECORD_CAP: read past already
            if _RECORD_START.search(head) and _more_after_line(handle):
                return "jsonl"
            return "json"
        more = line.endswith(b"\n") and _more_after_line(handle)
    if more:
        obj = _json_object(line)
        if obj is not None:
            return "chatcap-jsonl" if _is_chatcap(obj) else "jsonl"
    return "json"


def _more_after_line(handle: IO[bytes]) -> bool:
    """Whether anything but blanks follows (the handle is past the end of a line)."""
    while block := handle.read(_READ_BYTES):
        if not block.isspace():
            return True
    return False


def _preview(data: bytes) -> str:
    line = data.split(b"\n", 1)[0][:60].decode("utf-8", "replace").strip()
    return repr(line)


def _looks_like_har(head: bytes) -> bool:
    return re.match(rb'\s*\{\s*"log"\s*:', head.lstrip(b"\xef\xbb\xbf")) is not None


# -- JSON records ----------------------------------------------------------------------------------

# A UTF-16 surrogate escape without its partner (`"\ud800"`): valid JSON syntax, and what a
# browser's JSON.stringify writes for a string cut inside a pair, but not text; orjson refuses
# the whole document for it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _without_lone_surrogates(data: bytes | memoryview) -> bytes:
    """`data` with each lone surrogate escape replaced by `\ufffd` (an escape is one when an even
    number of backslashes precede it; a high one followed by a low one is a pair)."""
    data = bytes(data)
    out: list[bytes] = []
    last = paired_low = 0
    for match in _SURROGATE_ESCAPE.finditer(data):
        start = match.start()
        before = start
        while before and data[before - 1] == 0x5C:  # backslashes before this one
            before -= 1
        if (start - before) % 2 or start == paired_low:
            continue
        if match.group()[3:4] in b"89abAB" and _SURROGATE_ESCAPE.match(data, match.end()):
            low = data[match.end() + 3 : match.end() + 4]
            if low in b"cdefCDEF":
                paired_low = match.end()
                continue
        out += [data[last:start], b"\\ufffd"]
        last = match.end()
    return b"".join([*out, data[last:]]) if out else data


_SURROGATE_NOTICE = Notice(
    "lone_surrogate",
    "the record held a lone UTF-16 surrogate escape (e.g. \\ud800), which is not text: replaced by U+FFFD",
)


def _json_value(data: bytes | memoryview) -> tuple[Any, bool]:
    """`data` parsed as JSON (orjson: integers past 64 bits become floats, nesting stops at 1,024),
    and whether lone surrogate escapes had to be replaced first. Raises orjson.JSONDecodeError."""
    try:
        return orjson.loads(data), False
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        fixed = _without_lone_surrogates(data)
        if fixed == data:
            raise
        return orjson.loads(fixed), True


def _json_object(line: bytes) -> dict[str, Any] | None:
    try:
        obj = _json_value(line)[0]
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _is_chatcap(obj: dict[str, Any]) -> bool:
    meta = obj.get("_chatcap")
    return isinstance(meta, dict) and isinstance(meta.get("schema"), str) and meta["schema"].startswith("chatcap/")


def _json_error(exc: orjson.JSONDecodeError) -> str:
    text = str(exc)
    if text.startswith("depth limit exceeded") or text.startswith("recursion limit"):
        return "nested deeper than 1,024 levels"
    return f"not JSON: {text}"


# -- reading ---------------------------------------------------------------------------------------


def parse(data: str | bytes, source: str = "<memory>") -> Exchanges:
    """Exchanges from one in-memory input of any supported format."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    result = Exchanges()
    try:
        result.extend(_read_bytes(raw, source, result.problems))
    except LoadError:
        raise
    except Exception as exc:  # a bug met by odd input: one line naming the input, never a traceback
        raise LoadError(source, f"could not be read: {_failure(exc)}") from None
    return result


def _read_bytes(raw: bytes, source: str, problems: list[Problem]) -> Iterator[Exchange]:
    try:
        fmt, head = _sniff(io.BytesIO(raw))
    except NoExchangesFound as exc:
        raise NoExchangesFound(source, exc.reason) from None
    return _read_format(raw, fmt, head, source, problems)


def _read_format(raw: bytes, fmt: str, head: bytes, source: str, problems: list[Problem]) -> Iterator[Exchange]:
    """`raw`, of the sniffed format `fmt`."""
    if fmt == "gzip":
        return _read_gzip(io.BytesIO(raw), source, problems)
    if fmt in ("chatcap-jsonl", "jsonl"):
        return _read_lines(_bounded_lines(io.BytesIO(raw), source, problems), source, fmt, problems)
    if fmt == "mitmproxy-flows":
        return _read_flows(io.BytesIO(raw), source, _label(source, 0).rsplit("#", 1)[0], problems)
    if fmt == "json":
        return iter(_read_json(raw, source, problems))
    text, notices = _repaired(raw)
    if fmt == "raw-http":
        return iter(_read_raw_http(raw, text, notices, source))
    return iter([_sse_exchange(text, raw, notices, source)])


class _Unzipped(io.RawIOBase):
    """A gzip stream that ends, instead of raising, where it is damaged or cut short (`error` says
    why), so that the readers keep every record before the damage."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self.stream = gzip.GzipFile(fileobj=handle, mode="rb")
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            return 0
        try:
            data = self.stream.read1(len(buffer))
        except _UNZIP_ERRORS as exc:
            self.error = exc
            return 0
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.error = None
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


def _read_gzip(
    handle: IO[bytes], source: str, problems: list[Problem], tick: Callable[[], None] = lambda: None
) -> Iterator[Exchange]:
    """A gzipped input, decompressed as it is read: JSON lines, flows and HAR files stream (each
    record bounded as in a plain file); anything else is read up to `BODY_CAP` bytes. A stream
    damaged or cut short keeps the records before the damage."""
    stream = _Unzipped(handle)
    unzipped = io.BufferedReader(stream, _READ_BYTES)
    try:
        fmt, head = _sniff(unzipped)
    except NoExchangesFound as exc:
        if stream.error is not None:
            raise LoadError(source, f"gzip file does not decompress: {_failure(stream.error)}") from None
        raise NoExchangesFound(source, f"{exc.reason} (in a gzip file)") from None
    if fmt == "gzip":
        raise LoadError(source, "a gzip file inside a gzip file: not unpacked again (gunzip it once first)")
    unzipped.seek(0)
    try:
        if fmt in ("chatcap-jsonl", "jsonl"):
            yield from _read_lines(_bounded_lines(unzipped, source, problems), source, fmt, problems, tick)
        elif fmt == "mitmproxy-flows":
            yield from _read_flows(unzipped, source, _label(source, 0).rsplit("#", 1)[0], problems, tick)
        elif fmt == "json" and _looks_like_har(head):
            yield from _read_large_har(unzipped, source, problems, tick)
        else:
            raw = unzipped.read(BODY_CAP + 1)
            if len(raw) > BODY_CAP:
                raw = raw[:BODY_CAP]
                problems.append(
                    Problem(
                        source,
                        f"decompresses to more than {BODY_CAP:,} bytes (a decompression bomb?): read the first {BODY_CAP:,}",
                    )
                )
            yield from _read_format(raw, fmt, head, source, problems)
    except LoadError as exc:
        if stream.error is None:
            raise
        raise LoadError(source, f"gzip file does not decompress ({_failure(stream.error)}): {exc.reason}") from None
    if stream.error is not None:
        problems.append(
            Problem(
                source,
                f"the gzip stream is damaged or cut short after {stream.tell():,} bytes ({_failure(stream.error)}): "
                "the rest is lost",
            )
        )


def _repaired(raw: bytes) -> tuple[bytes, list[Notice]]:
    """Text dumps: repair mojibake (UTF-8 read through a legacy code page and saved again)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw, []
    fixed, codecs = repair_mojibake(text)
    if not codecs:
        return raw, []
    return fixed.encode("utf-8"), [mojibake_notice(codecs)]


def _label(source: str, n: int) -> str:
    return f"{Path(source).name if source != '<memory>' else 'memory'}#{n}"


def _line(handle: IO[bytes]) -> bytes | int:
    """The next line of `handle` (b"" at the end), read a piece at a time: a line longer than
    `RECORD_CAP` is read past, never held, and given as its length."""
    piece = handle.readline(_READ_BYTES)
    if len(piece) < _READ_BYTES or piece.endswith(b"\n"):
        return piece  # nearly every line: one read
    pieces: list[bytes] | None = [piece]
    size = len(piece)
    while not piece.endswith(b"\n"):
        piece = handle.readline(_READ_BYTES)
        if not piece:
            break
        size += len(piece)
        if pieces is not None and size > RECORD_CAP:
            pieces = None
        elif pieces is not None:
            pieces.append(piece)
    return b"".join(pieces) if pieces is not None else size


def _bounded_lines(handle: IO[bytes], source: str, problems: list[Problem]) -> Iterator[bytes | int]:
    """The lines of `handle` (see `_line`). A read that fails (a damaged gzip stream) ends the
    lines with a problem."""
    number = 0
    try:
        while line := _line(handle):
            number += 1
            yield line
    except _UNZIP_ERRORS as exc:
        problems.append(Problem(source, f"reading stopped after line {number}: {_failure(exc)}; the rest is lost"))


def _read_lines(
    lines: Iterable[bytes | int],
    source: str,
    fmt: str,
    problems: list[Problem],
    tick: Callable[[], None] = lambda: None,
    first_line: int = 1,
) -> Iterator[Exchange]:
    """One exchange per JSON line, read one line at a time; a bad line is a problem, not the end
    of the file (the first few named, the rest counted). A line given as an int is one that was
    too long to read: its length. `first_line`: the number of the first line given."""
    count = 0
    bad = _BadRecords(source, problems, "line", "lines")
    for number, line in enumerate(lines, first_line):
        if number % 64 == 0:
            tick()
        if isinstance(line, int):
            bad.add(f"line {number}", f"line of {line:,} bytes is longer than {RECORD_CAP:,}: line skipped")
            continue
        if not line or line.isspace():
            continue
        try:
            obj, repaired = _json_value(line)
        except orjson.JSONDecodeError:
            obj, repaired = None, False
        if not pairs.is_pair(obj):
            if obj is None and not line.endswith(b"\n"):
                reason = "torn last line (cut off mid-write, e.g. the writer was killed)"
            elif not isinstance(obj, dict):
                reason = "not a JSON object"
            else:
                reason = "JSON object without request and response"
            bad.add(f"line {number}", f"{reason}; line skipped")
            continue
        line_fmt = "chatcap-jsonl" if _is_chatcap(obj) else fmt
        raw = line.rstrip(b"\r\n")
        exchange = _exchange(obj, bad, source, count + 1, f"line {number}", line_fmt, raw, repaired, "record", "line")
        if exchange is not None:
            count += 1
            yield exchange
    bad.close()
    if count == 0:
        raise NoExchangesFound(source, bad.last or "no exchanges found")


def _read_json(raw: bytes, source: str, problems: list[Problem]) -> list[Exchange]:
    try:
        obj, repaired = _json_value(raw)
    except orjson.JSONDecodeError as exc:
        # One bad entry (nested too deep, a number out of range) or a cut-off end: entry by entry,
        # the rest of a HAR file still loads; a first JSON line torn, the other lines do.
        if _looks_like_har(raw[:_SNIFF_BYTES]):
            return list(_read_large_har(io.BytesIO(raw), source, problems))
        found = _after_a_bad_first_line(raw, source, problems)
        if found:
            return found
        raise LoadError(source, f"invalid JSON: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("log"), dict):
        entries = obj["log"].get("entries")
        if not isinstance(entries, list):
            raise LoadError(source, "HAR file without log.entries")
        del obj
        if repaired and _looks_like_har(raw[:_SNIFF_BYTES]):  # say which entries held lone surrogates
            del entries
            return list(_read_large_har(io.BytesIO(raw), source, problems))
        return list(_har_entries(((entry, None, repaired) for entry in entries), source, problems))
    if pairs.is_pair(obj):
        if _is_chatcap(obj):  # a capture file with a single line
            return _from_objects([obj], source, "chatcap-jsonl", "line", problems, repaired)
        fmt = "har-entry" if "startedDateTime" in obj else "json-dump"
        return _from_objects([obj], source, fmt, "", problems, repaired)
    if isinstance(obj, list) and any(pairs.is_pair(item) for item in obj):
        return _from_objects(obj, source, "json-dump", "item", problems, repaired)
    if (
        (isinstance(obj, dict) and any(key in obj for key in _RESPONSE_KEYS))
        or _is_message(obj)
        or _is_gemini_array(obj)
    ):
        response = Response(status=None, headers=[("content-type", "application/json")], body=raw)
        return [
            Exchange(
                id=_label(source, 1), source=source, format="response-json", request=None, response=response, raw=raw
            )
        ]
    raise NoExchangesFound(source, "no exchanges found: JSON, but neither a capture, a HAR file nor a response")


def _after_a_bad_first_line(raw: bytes, source: str, problems: list[Problem]) -> list[Exchange]:
    """JSON lines whose first line is broken (torn, or a value orjson refuses): the lines after
    it, when any of them is a record; [] when none is (then it is one broken document)."""
    if raw.lstrip(_BLANK)[:1] != b"{" or raw.count(b"\n", 0, _SNIFF_BYTES + RECORD_CAP) == 0:
        return []
    found: list[Problem] = []
    try:
        exchanges = list(_read_lines(_bounded_lines(io.BytesIO(raw), source, found), source, "jsonl", found))
    except NoExchangesFound:
        return []
    problems.extend(found)
    return exchanges


# A bare response body in any protocol: chat's `choices`, an error, an `object` (chat
# completion, Responses' response), Gemini's `candidates`.
_RESPONSE_KEYS = ("choices", "error", "object", "candidates")


def _is_gemini_array(obj: Any) -> bool:
    """Gemini's streamGenerateContent without `alt=sse`: one JSON array of response chunks."""
    return (
        isinstance(obj, list)
        and bool(obj)
        and all(isinstance(item, dict) and ("candidates" in item or "usageMetadata" in item) for item in obj)
    )


def _is_message(obj: Any) -> bool:
    """Anthropic's message object."""
    return isinstance(obj, dict) and obj.get("type") == "message" and "content" in obj


def _record(obj: Any) -> bytes:
    """An entry's raw record: its JSON, copied to an exact-size buffer. orjson's own result can
    sit in a block many times its length, and a large HAR keeps thousands of these. orjson
    writes at most 254 levels; a deeper entry is written by the standard library."""
    try:
        return bytes(memoryview(orjson.dumps(obj)))
    except orjson.JSONEncodeError:
        pass
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4000))  # orjson reads 1,024 levels; json's writer takes a frame for each
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    finally:
        sys.setrecursionlimit(limit)


# -- HAR files, entry by entry ---------------------------------------------------------------------


def _har_entries(
    entries: Iterable[tuple[Any, str | None, bool]],
    source: str,
    problems: list[Problem],
    tick: Callable[[], None] = lambda: None,
    first_of_piece: int | None = None,
) -> Iterator[Exchange]:
    """The LLM calls among a HAR file's entries, each judged before its bodies are decoded
    (a browser's HAR is mostly assets); how many were left out is reported as a problem.
    `entries`: (entry, why it could not be read or None, whether lone surrogates were replaced).
    `first_of_piece`: when they are a piece of the file (`har_pieces`), the number of the first;
    how many were left out is then reported even when none was (`parallel` adds the pieces' up)."""
    first = 1 if first_of_piece is None else first_of_piece
    number = first - 1  # the last entry's
    count = skipped = 0
    bad = _BadRecords(source, problems, "entry", "entries")
    damage: _Damaged | None = None
    try:
        for number, (entry, error, repaired) in enumerate(entries, first):
            if number % 16 == 0:
                tick()
            if error is not None:
                bad.add(f"entry {number}", f"{error}; entry skipped")
                continue
            if not pairs.is_pair(entry):  # a scalar (null too) or an object of another kind
                bad.add(f"entry {number}", "not an object with request and response objects; entry skipped")
                continue
            try:
                if not pairs.is_llm_pair(entry):
                    skipped += 1
                    continue
            except Exception as exc:  # a value no check foresaw: this entry is lost, not the file
                bad.add(f"entry {number}", f"entry could not be read ({_failure(exc)}); entry skipped")
                continue
            exchange = _exchange(
                entry, bad, source, count + 1, f"entry {number}", "har", None, repaired, "entry", "entry"
            )
            if exchange is not None:
                count += 1
                yield exchange
    except _Damaged as exc:
        if count == 0 and first == 1:
            raise LoadError(source, f"invalid JSON: {exc}") from None
        damage = exc
    total = number - first + 1  # the entries read
    if damage is not None:
        problems.append(Problem(source, f"HAR file is damaged after entry {number:,}: {damage}; the rest is lost"))
    bad.close()
    if skipped or first_of_piece is not None:
        problems.append(Problem(source, f"{skipped} of {total} entries are not LLM API calls: left out"))
    if count == 0:
        if bad.count:
            raise NoExchangesFound(source, f"no exchanges found: {bad.last}")
        if total == 0:
            raise NoExchangesFound(source, "no exchanges found: the HAR file has no entries")
        raise NoExchangesFound(source, f"no exchanges found: none of its {total} entries is an LLM API call")


class _Damaged(Exception):
    """A HAR file's structure breaks (or the file ends) inside log.entries."""


def _read_large_har(
    handle: IO[bytes],
    source: str,
    problems: list[Problem],
    tick: Callable[[], None] = lambda: None,
    piece: tuple[int, int, int, int] | None = None,
) -> Iterator[Exchange]:
    """A HAR file read entry by entry: memory holds one entry (and the LLM calls kept), not the file.
    Each entry is parsed alone, as the whole-file reader would parse it (orjson), so one entry
    nested too deep or holding a number out of range is a problem for that entry only.
    `piece`: `handle` holds the bytes [start, end) of a file of `size` bytes (`har_pieces`)."""
    at, inside, first = 0, (False, False), None
    if piece is not None:
        start, end, size, first = piece
        at, inside = start, (start > 0, end < size)
    try:
        elements = _har_elements(handle, at=at, inside=inside)
        yield from _har_entries(map(_parse_entry, elements), source, problems, tick, first)
    except _UNZIP_ERRORS as exc:
        raise LoadError(source, f"gzip file does not decompress: {_failure(exc)}") from None
    except LoadError as exc:
        if exc.source != "<data>":
            raise
        raise LoadError(source, exc.reason) from None


def _parse_entry(element: bytes | int | None) -> tuple[Any, str | None, bool]:
    if element is None:  # a number, string, true, false or null among the entries
        return None, None, False
    if isinstance(element, int):
        return None, f"entry of {element:,} bytes is longer than {RECORD_CAP:,}", False
    try:
        entry, repaired = _json_value(element)
    except orjson.JSONDecodeError as exc:
        return None, _json_error(exc), False
    return entry, None, repaired


def _key_before(window: bytes, key: bytes) -> bool:
    """Whether `window` ends with the object key `key` and its colon."""
    text = window.rstrip()
    return text.endswith(b":") and text[:-1].rstrip().endswith(b'"' + key + b'"')


def _string_quotes(view: Any, backslashes: int) -> Any:
    """Where the quotes that open or close strings are in a block (a numpy array of its bytes):
    every quote but those after an odd run of backslashes, a run that may go on from the block
    before (`backslashes` ended it). Only the quotes and the backslashes are looked at (in JSON
    text held in strings, both are many, but far fewer than the block's bytes)."""
    import numpy as np

    quote = view == 0x22
    slashes = np.flatnonzero(view == 0x5C)
    if backslashes & 1 and view.size and view[0] == 0x22:
        quote[0] = False  # escaped by the run that ended the block before
    if slashes.size:
        # Each run of backslashes: where it ends, and how long it is (with what the block before
        # ended with, for a run from the block's first byte); the byte after an odd run is escaped.
        ends = np.ones(slashes.size, dtype=bool)
        ends[:-1] = slashes[1:] != slashes[:-1] + 1
        starts = np.ones(slashes.size, dtype=bool)
        starts[1:] = ends[:-1]
        first = np.flatnonzero(starts)
        last = np.flatnonzero(ends)
        lengths = last - first + 1 + np.where(slashes[first] == 0, backslashes, 0)
        escaped = slashes[last[(lengths & 1) == 1]] + 1
        quote[escaped[escaped < view.size]] = False
    return np.flatnonzero(quote)


def _har_elements(
    handle: IO[bytes], *, at: int = 0, inside: tuple[bool, bool] = (False, False), spans: bool = False
) -> Iterator[Any]:
    """The elements of a HAR file's `log.entries`, in order, found by the file's bracket structure
    (brackets inside strings skipped, found with numpy a block at a time; only the few at the
    entries' own level are looked at in Python). Nothing is parsed here: each element is yielded
    as its JSON text, as its length when longer than `RECORD_CAP` (never held), or as None for
    a scalar. How deep an entry nests costs nothing. Raises LoadError when there is no
    log.entries, `_Damaged` when the structure breaks inside it.

    `at`: where in the file `handle` starts. `inside`: whether it starts and whether it ends
    between two elements of log.entries (a piece of the file cut by `har_pieces`). `spans`:
    each object or array element yielded as where it starts and ends in the file instead."""
    import numpy as np

    step = np.zeros(256, dtype=np.int64)
    step[list(b"{[")] = 1
    step[list(b"}]")] = -1

    depth = 0  # brackets open before the block
    in_string = False  # the block starts inside a string
    backslashes = 0  # how many backslashes end the previous block
    tail = b""  # the previous block's last bytes, to read a key split across blocks
    in_log = in_entries = found = inside[0]
    if inside[0]:
        depth = 3
    base = at  # where in the file the block starts
    began = 0  # where in the file the element being read started
    started = -1  # where in the block the element being read started (0: in an earlier block)
    parts: list[bytes] = []
    size = 0
    element_seen = False  # an object or array element since the last comma
    # Where in the block the text after the last comma (or the entries' `[`) starts, and whether
    # an earlier block held some of it: a scalar element, found at the comma or `]` after it.
    after_comma, scalar = 0, False
    while block := handle.read(_READ_BYTES):
        view = np.frombuffer(block, dtype=np.uint8)
        quotes = _string_quotes(view, backslashes)
        marks = np.flatnonzero((view == 0x7B) | (view == 0x7D) | (view == 0x5B) | (view == 0x5D) | (view == 0x2C))
        marks = marks[((np.searchsorted(quotes, marks) + in_string) & 1) == 0]  # outside strings
        steps = step[view[marks]]
        after = depth + np.cumsum(steps)
        before_mark = after - steps
        wanted = (
            ((steps == 1) & (before_mark <= 3)) | ((steps == -1) & (after <= 3)) | ((steps == 0) & (before_mark == 3))
        )
        for index in np.flatnonzero(wanted).tolist():
            pos = int(marks[index])
            char = block[pos]
            level = int(before_mark[index])
            if char == 0x2C:  # a comma between elements
                if in_entries and not element_seen:
                    yield None
                element_seen, after_comma, scalar = False, pos + 1, False
            elif char in (0x7B, 0x5B):  # { or [
                if level == 0 and char != 0x7B:
                    raise LoadError("<data>", "not a HAR file: the top level is not an object")
                if level == 1:
                    in_log = char == 0x7B and _key_before(tail + block[max(0, pos - 1024) : pos], b"log")
                elif level == 2 and in_log and char == 0x5B and not found:
                    in_entries = found = _key_before(tail + block[max(0, pos - 1024) : pos], b"entries")
                    element_seen, after_comma, scalar = False, pos + 1, False
                elif level == 3 and in_entries:
                    started, parts, size, element_seen, began = pos, [], 0, True, base + pos
            else:  # } or ]
                level -= 1
                if level < 0:
                    raise _Damaged(f"a closing bracket with nothing open (byte {base + pos:,})")
                if level == 3 and in_entries and started >= 0 and spans:
                    yield began, base + pos + 1
                    started = -1
                elif level == 3 and in_entries and started >= 0:
                    piece = block[started : pos + 1]
                    size += len(piece)
                    if size > RECORD_CAP:
                        yield size
                    else:
                        yield b"".join([*parts, piece]) if parts else piece
                    started, parts = -1, []
                elif level == 2 and in_entries:
                    if not element_seen and (scalar or block[after_comma:pos].strip()):
                        yield None  # the last element, a scalar
                    in_entries = False
                elif level == 1:
                    in_log = False
        if in_entries and not element_seen:
            scalar = scalar or bool(block[after_comma:].strip())
        after_comma = 0
        if started >= 0 and spans:
            started = 0
        elif started >= 0:  # the element goes on in the next block
            piece = block[started:]
            size += len(piece)
            if size > RECORD_CAP:
                parts = []
            elif piece:
                parts.append(piece)
            started = 0
        if after.size:
            depth = int(after[-1])
        in_string ^= bool(quotes.size & 1)
        run = len(block) - len(block.rstrip(b"\\"))
        backslashes = backslashes + run if run == len(block) else run
        tail = (tail + block)[-1024:] if len(block) < 1024 else block[-1024:]
        base += len(block)
    if inside[1]:
        if in_string or depth != 3 or not in_entries or started >= 0:  # the file changed since it was cut
            raise _Damaged(f"byte {base:,} is not between two entries")
        return
    if in_entries or started >= 0:
        raise _Damaged("the file ends inside log.entries")
    if not found:
        raise LoadError("<data>", "HAR file without log.entries")


# -- other readers ---------------------------------------------------------------------------------


def _read_flows(
    handle: Any, source: str, label: str, problems: list[Problem], tick: Callable[[], None] = lambda: None
) -> Iterator[Exchange]:
    skipped: list[int] = []
    count = 0
    bad = _BadRecords(source, problems, "flow", "flows")
    try:
        for exchange in flows.read(handle, source, label, skipped, tick, bad.add, RECORD_CAP):
            count += 1
            yield exchange
    except LoadError as exc:
        if not count:
            raise
        problems.append(Problem(source, exc.reason))
    bad.close()
    other, non_http = skipped or [0, 0]
    total = count + other + non_http + bad.count
    if other or non_http:
        kinds = f"{other} not an LLM API call" + (f", {non_http} not HTTP" if non_http else "")
        problems.append(Problem(source, f"{other + non_http} of {total} flows left out ({kinds})"))
    if not count:
        if bad.count:
            raise NoExchangesFound(source, f"no exchanges found: {bad.last}")
        raise NoExchangesFound(source, f"no exchanges found: none of its {total} flows is an LLM API call")


def _from_objects(
    items: list[Any], source: str, fmt: str, unit: str, problems: list[Problem], repaired: bool = False
) -> list[Exchange]:
    out = []
    bad = _BadRecords(source, problems, unit or "record", f"{unit or 'record'}s")
    for n, item in enumerate(items, 1):
        position = f"{unit} {n}" if unit else ""
        if not pairs.is_pair(item):
            bad.add(position, "not an object with request and response; skipped")
            continue
        exchange = _exchange(item, bad, source, len(out) + 1, position, fmt, None, repaired, "record", "")
        if exchange is not None:
            out.append(exchange)
    bad.close()
    if not out:
        raise NoExchangesFound(
            source,
            f"no exchanges found: {bad.last}"
            if bad.count
            else "no exchanges found: no entry has a request and a response",
        )
    return out


def _read_raw_http(raw: bytes, text: bytes, notices: list[Notice], source: str) -> list[Exchange]:
    found = rawhttp.read(text)
    if notices and not all(x.length_ok for x in found):
        # The "repair" broke a Content-Length that held before: it was not mojibake.
        original = rawhttp.read(raw)
        if all(x.length_ok for x in original):
            found, notices = original, []
    out = []
    for n, x in enumerate(found, 1):
        warnings = [*notices, *x.warnings]
        if not x.length_ok:
            warnings.append(Notice("content_length_mismatch", "request body does not match its Content-Length"))
        out.append(
            Exchange(
                id=_label(source, n),
                source=source,
                position=f"exchange {n}" if len(found) > 1 else "",
                format="raw-http",
                request=x.request,
                response=x.response,
                raw=raw if len(found) == 1 else text[x.offset : found[n].offset if n < len(found) else len(text)],
                warnings=warnings,
            )
        )
    if not out:
        raise NoExchangesFound(source, "no exchanges found: no HTTP request or status line")
    return out


def _sse_exchange(text: bytes, raw: bytes, notices: list[Notice], source: str) -> Exchange:
    response = Response(status=None, headers=[("content-type", "text/event-stream")], body=text)
    return Exchange(
        id=_label(source, 1),
        source=source,
        format="sse-text",
        request=None,
        response=response,
        raw=raw,
        warnings=notices,
    )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "README.md"
        )
    return [path]


Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def load(paths: Paths, *, progress: bool | None = None) -> Exchanges:
    """Exchanges from a file, a directory (recursively) or a list of them, in any supported format.

    A single file that cannot be read raises `LoadError`. In a directory or list, bad
    files and bad records are skipped and listed in the result's `problems`.

    `progress`: a progress bar on stderr (or in the notebook) when loading takes more
    than a moment; by default only in a terminal or a Jupyter kernel.
    """
    exchanges = stream(paths, progress=progress)
    result = Exchanges(exchanges)
    result.problems = exchanges.problems
    return result


def stream(paths: Paths, *, progress: bool | None = None) -> ExchangeStream:
    """What `load` returns, one exchange at a time: each file is read as it is iterated, a
    record at a time where the format allows (see the module docstring), so memory holds
    the exchange in hand, not the input. `problems` fills as the reading goes.

        found = analyzer.stream("captures/")
        for exchange in found:
            rec = exchange.reconstruct()   # dropped with the exchange
        found.problems

    A path that does not exist raises `LoadError` here, as `load` does; a single file that
    cannot be read raises it from the iteration.
    """
    files, alone, problems = sources(paths)
    return ExchangeStream(files, alone, problems, progress)


def sources(paths: Paths) -> tuple[list[tuple[Path, str]], bool, list[Problem]]:
    """The files `load` reads for `paths`, each with the label its exchanges' ids start with;
    whether it is a single file given alone (what stops its reading is raised); and the paths
    that do not exist. A single path that does not exist raises `LoadError`."""
    single = isinstance(paths, (str, os.PathLike))
    roots = _expand([paths] if single else list(paths))
    if single and len(roots) == 1 and not roots[0].exists():
        pattern = any(c in str(roots[0]) for c in "*?[")
        raise LoadError(str(roots[0]), "no file matches this pattern" if pattern else "no such file or directory")
    problems: list[Problem] = []
    files: list[tuple[Path, str]] = []
    for root in roots:
        if not root.exists():
            problems.append(Problem(str(root), "no such file or directory"))
            continue
        files += [(file, str(file.relative_to(root)) if root.is_dir() else file.name) for file in _files(root)]
    return _unique(files), single and len(roots) == 1 and roots[0].is_file(), problems


def _unique(files: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Labels made unique: a file whose label another file already has (`a/x.jsonl` and
    `b/x.jsonl` given as `a/` and `b/`) is labelled by its path as given, so every exchange
    id names one exchange."""
    seen: set[str] = set()
    unique = []
    for file, label in files:
        if label in seen:
            label = str(file)
            while label in seen:
                label = f"{label}~"
        seen.add(label)
        unique.append((file, label))
    return unique


class ExchangeStream:
    """Exchanges read one at a time from files (`stream`); an iterator, read once. `problems`
    lists what could not be loaded so far, as `Exchanges.problems` does; `files` the files it
    reads, in order."""

    def __init__(self, files: list[tuple[Path, str]], alone: bool, problems: list[Problem], progress: bool | None):
        self.problems = problems
        self.files = [file for file, _ in files]
        self._exchanges = self._read(files, alone, progress)

    def __iter__(self) -> ExchangeStream:
        return self

    def __next__(self) -> Exchange:
        return next(self._exchanges)

    def close(self) -> None:
        """Stop reading: the file in hand is closed (and the progress bar)."""
        self._exchanges.close()

    def _read(self, files: list[tuple[Path, str]], alone: bool, progress: bool | None) -> Iterator[Exchange]:
        with _Progress(files, progress) as bar:
            if alone:  # a single file: what stops its reading is raised
                yield from file_exchanges(*files[0], self.problems, bar.reading)
                return
            for file, label in files:
                try:
                    yield from file_exchanges(file, label, self.problems, bar.reading)
                except LoadError as exc:
                    self.problems.append(Problem(str(file), exc.reason, exc.position))
                bar.next_file()


def _expand(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Paths, with glob patterns (`captures/*.jsonl`, `dumps/**/*.har`) that name no file expanded."""
    out: list[Path] = []
    for path in paths:
        text = os.fspath(path)
        if not os.path.exists(text) and any(c in text for c in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            out += [Path(match) for match in matches] or [Path(text)]
        else:
            out.append(Path(text))
    return out


class _Progress:
    """A byte-counting progress bar over a list of files (tqdm; shown after half a second)."""

    def __init__(self, files: list[tuple[Path, str]], enabled: bool | None) -> None:
        self.sizes = [_size(file) for file, _ in files]
        self.done = 0
        self.index = 0
        self.bar = byte_bar(sum(self.sizes), "loading", enabled)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        end_bar(self.bar, finished=kind is None)

    @property
    def reading(self) -> Callable[[int], None] | None:
        """`at`, when a bar is shown (`file_exchanges`' `reading`)."""
        return self.at if self.bar is not None else None

    def at(self, offset: int) -> None:
        """The current file has been read up to `offset`."""
        if self.bar is not None and self.done + offset > self.bar.n:
            self.bar.update(self.done + offset - self.bar.n)  # tqdm redraws at most ~10 times a second

    def next_file(self) -> None:
        if self.index < len(self.sizes):
            self.done += self.sizes[self.index]
            self.index += 1
        self.at(0)


def byte_bar(total: int, desc: str, enabled: bool | None) -> Any:
    """A progress bar over `total` bytes (tqdm), shown after `PROGRESS_DELAY_S`; None when not
    `enabled` (None: only in a terminal or a Jupyter kernel)."""
    if enabled is None:
        enabled = sys.stderr.isatty() or "ipykernel" in sys.modules
    if not enabled:
        return None
    from tqdm.auto import tqdm

    keep = "ipykernel" in sys.modules  # a notebook keeps the finished bar; a terminal clears it
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, delay=PROGRESS_DELAY_S, leave=keep)


def end_bar(bar: Any, finished: bool) -> None:
    """A `byte_bar` (or None) closed; when the work `finished`, drawn once more first if it is
    shown, so it is seen at where it ended (tqdm redraws at most ~10 times a second, and the
    last moves can fall between two draws)."""
    if bar is None:
        return
    if finished and time.time() - bar.start_t >= PROGRESS_DELAY_S:
        bar.refresh()
    bar.close()


def status(what: str, enabled: bool | None) -> contextlib.AbstractContextManager[Any]:
    """A spinner on stderr saying `what` while it lasts, for work that has no bytes to count;
    `enabled` None: only in a terminal (never in a notebook, where `byte_bar`'s bars are)."""
    if enabled is False or not (enabled or sys.stderr.isatty()) or "ipykernel" in sys.modules:
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(what)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def file_exchanges(
    path: Path, label: str, problems: list[Problem], reading: Callable[[int], None] | None = None
) -> Iterator[Exchange]:
    """The exchanges of one file, named `label#1`, `label#2`, … as they are read; `reading(offset)`
    told now and then how far into the file the reading is (a progress bar's)."""
    number = 0
    try:
        for exchange in _read_file(path, problems, reading):
            number += 1
            exchange.id = f"{label}#{number}"
            yield exchange
    except LoadError:
        raise
    except OSError as exc:
        raise LoadError(str(path), exc.strerror or str(exc)) from None
    except Exception as exc:  # a bug met by odd input: one line naming the file, never a traceback
        raise LoadError(str(path), f"could not be read: {_failure(exc)}") from None


# A JSON-lines file at least this large is read in pieces by several workers (`line_pieces`).
PIECE_BYTES = 32 * 1024 * 1024


def line_pieces(path: Path, pieces: int) -> list[tuple[int, int, int]] | None:
    """`path` cut at line ends into about `pieces` byte ranges of whole lines, each as (start,
    end, number of its first line), when it is a JSON-lines file (a capture) of at least
    `PIECE_BYTES` a piece; else None (read it whole)."""
    size = _size(path)
    pieces = min(pieces, size // PIECE_BYTES)
    if pieces < 2:
        return None
    try:
        return _pieces(path, size, pieces)
    except (OSError, NoExchangesFound):  # read whole, by a worker, which says what is wrong
        return None


def _pieces(path: Path, size: int, pieces: int) -> list[tuple[int, int, int]] | None:
    with path.open("rb") as handle:
        fmt, _ = _sniff(handle)
        if fmt not in ("chatcap-jsonl", "jsonl"):
            return None
        cuts = [0]
        for n in range(1, pieces):
            handle.seek(max(size * n // pieces - 1, cuts[-1]))
            while (piece := handle.readline(_READ_BYTES)) and not piece.endswith(b"\n"):
                pass  # to the start of the next line, a bounded read at a time (a line can be huge)
            if cuts[-1] < handle.tell() < size:
                cuts.append(handle.tell())
        cuts.append(size)
        handle.seek(0)
        found, lines, at = [], 1, 0
        for start, end in itertools.pairwise(cuts):
            while at < start:  # count the line ends before this piece, a block at a time
                block = handle.read(min(_READ_BYTES, start - at))
                lines += block.count(b"\n")
                at += len(block)
            found.append((start, end, lines))
    return found


def har_pieces(path: Path, pieces: int, progress: bool | None = False) -> list[tuple[int, int, int]] | None:
    """`path` cut between two entries into about `pieces` byte ranges of whole entries, each as
    (start, end, number of its first entry), when it is a HAR file read entry by entry (past
    `STREAM_HAR_BYTES`) of at least `PIECE_BYTES` a piece; else None (read it whole). The cuts
    are found by reading the file's structure once (`_har_elements`, about 5 s a GB: a bar
    shows it, as `byte_bar`'s `enabled` says): a HAR file cannot be cut blind, a bracket may be
    in a string."""
    size = _size(path)
    pieces = min(pieces, size // PIECE_BYTES)
    if pieces < 2 or size <= STREAM_HAR_BYTES:
        return None
    found = []
    bar, finished = None, False
    try:
        with path.open("rb") as handle:
            fmt, head = _sniff(handle)
            if fmt != "json" or not _looks_like_har(head):
                return None
            handle.seek(0)
            bar = byte_bar(size, f"finding the entries of {path.name}", progress)
            start, first, end = 0, 1, None  # the piece being found; where its last entry ends
            for number, span in enumerate(_har_elements(handle, spans=True), 1):
                if span is not None and end is not None and span[0] >= size * (len(found) + 1) // pieces:
                    found.append((start, end, first))
                    start, first = span[0], number
                end = None if span is None else span[1]  # a cut is made after an object, not a scalar
                if bar is not None and number % 64 == 0:
                    bar.update(handle.tell() - bar.n)
            if bar is not None:
                bar.update(size - bar.n)
            finished = True
    except (OSError, LoadError, _Damaged):  # read whole, by a worker, which says what is wrong
        return None
    finally:
        end_bar(bar, finished)
    found.append((start, size, first))
    return found if len(found) > 1 else None


def piece_exchanges(
    path: Path,
    label: str,
    start: int,
    end: int,
    first: int,
    problems: list[Problem],
    reading: Callable[[int], None] | None = None,
) -> Iterator[Exchange]:
    """The exchanges of the lines of `path` in bytes [start, end) (`line_pieces`), lines numbered
    from `first`, or of the HAR entries there (`har_pieces`), entries numbered from `first`; the
    exchanges numbered `label#1`, … within the piece. A piece holding no exchange yields none:
    whether the file holds any is the caller's to say. `reading(offset)`: told now and then how
    far into the piece the reading is."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            fmt, _ = _sniff(handle)
            handle.seek(start)
            window = _Window(handle, end - start)
            tick = (lambda: reading(handle.tell() - start)) if reading is not None else (lambda: None)
            if fmt == "json":
                read = _read_large_har(window, source, problems, tick, piece=(start, end, _size(path), first))
            else:
                lines = _bounded_lines(window, source, problems)
                read = _read_lines(lines, source, fmt, problems, tick, first_line=first)
            number = 0
            try:
                for exchange in read:
                    number += 1
                    exchange.id = f"{label}#{number}"
                    yield exchange
            except NoExchangesFound:
                return
    except OSError as exc:
        raise LoadError(source, exc.strerror or str(exc)) from None


class _Window(io.RawIOBase):
    """The next `size` bytes of a handle, as a file of their own."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self.handle, self.left = handle, size

    def readable(self) -> bool:
        return True

    def readline(self, limit: int | None = -1) -> bytes:
        return self._take(self.handle.readline, limit)

    def read(self, size: int | None = -1) -> bytes:
        return self._take(self.handle.read, size)

    def _take(self, how: Callable[[int], bytes], limit: int | None) -> bytes:
        """`how` (the handle's read or readline) of at most `limit` bytes, never past the window."""
        if self.left <= 0:
            return b""
        data = how(self.left if limit is None or limit < 0 else min(limit, self.left))
        self.left -= len(data)
        return data


def _read_file(path: Path, problems: list[Problem], reading: Callable[[int], None] | None) -> Iterator[Exchange]:
    source = str(path)
    with path.open("rb") as handle:
        tick = (lambda: reading(handle.tell())) if reading is not None else (lambda: None)
        try:
            fmt, head = _sniff(handle)
        except NoExchangesFound as exc:
            raise NoExchangesFound(source, exc.reason) from None
        handle.seek(0)
        if fmt == "gzip":
            yield from _read_gzip(handle, source, problems, tick)
        elif fmt in ("chatcap-jsonl", "jsonl"):
            yield from _read_lines(_bounded_lines(handle, source, problems), source, fmt, problems, tick)
        elif fmt == "mitmproxy-flows":
            yield from _read_flows(handle, source, path.name, problems, tick)
        elif fmt == "json" and _size(path) > STREAM_HAR_BYTES and _looks_like_har(head):
            yield from _read_large_har(handle, source, problems, tick)
        else:
            yield from _read_format(handle.read(), fmt, head, source, problems)
