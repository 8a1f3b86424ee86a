"""Reading inputs: sniff the format, undo transport and text damage, return `Exchange`s.

Formats, sniffed from the bytes (never from the file name):

- `chatcap-jsonl`: the addon's capture, one HAR entry per line (`_chatcap.schema` = chatcap/1)
- `jsonl`: other JSON lines, each a HAR entry or a `{request, response}` dump
- `har`: a HAR 1.2 file (`{"log": {"entries": [...]}}`)
- `json-dump`: one `{request, response}` object (or a list of them) with string bodies
- `response-json`: a bare response body (a `chat.completion` or an error object)
- `raw-http`: pasted HTTP/1.x text, request then response
- `sse-text`: a bare event stream, possibly pretty-printed or wrapped by a log
- `mitmproxy-flows`: a mitmproxy flow file (`mitmdump -w`), read with mitmproxy itself

Large inputs stream: JSON lines and flow files are read one record at a time, and a HAR
file past `STREAM_HAR_BYTES` entry by entry (ijson), so memory stays near one entry's size.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from analyzer.errors import LoadError, NoExchangesFound
from analyzer.ingest import flows, pairs, rawhttp
from analyzer.ingest.text import mojibake_notice, repair_mojibake
from analyzer.model import Exchange, Notice, Response

__all__ = ["Exchanges", "Problem", "load", "parse", "sniff"]

# A bare stream starts with a field or a comment; a page that merely quotes an example
# stream (documentation, a chat log) starts with prose and is not a capture.
_SSE_START = re.compile(rb"(?:data|event|id|retry)?:")
_SNIFF_BYTES = 64 * 1024
STREAM_HAR_BYTES = 64 * 1024 * 1024  # HAR files larger than this are read entry by entry
PROGRESS_DELAY_S = 0.5  # a progress bar appears only when loading takes longer than this


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


def sniff(data: bytes) -> str:
    """Name the format of `data` (see the module docstring) or raise NoExchangesFound."""
    head = data[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise NoExchangesFound("<data>", "empty input: no exchanges found")
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if flows.looks_like_flows(head):
        return "mitmproxy-flows"
    if b"\0" in head[:4096]:
        raise NoExchangesFound("<data>", "binary data, not a capture: no exchanges found")
    if head[:1] in (b"{", b"["):
        first_line = head.split(b"\n", 1)[0]
        if head[:1] == b"{" and b"\n" in head.rstrip() and _json_object(first_line) is not None:
            obj = _json_object(first_line)
            return "chatcap-jsonl" if _is_chatcap(obj) else "jsonl"
        return "json"
    if rawhttp.looks_like_http(head):
        return "raw-http"
    if _SSE_START.match(head):
        return "sse-text"
    hint = " (it quotes an event stream, but a capture would start with one)" if b"\ndata:" in head else ""
    raise NoExchangesFound("<data>", f"no exchanges found: not a capture (starts with {_preview(head)}){hint}")


def _preview(data: bytes) -> str:
    line = data.split(b"\n", 1)[0][:60].decode("utf-8", "replace").strip()
    return repr(line)


def _json_object(line: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _is_chatcap(obj: dict[str, Any]) -> bool:
    meta = obj.get("_chatcap")
    return isinstance(meta, dict) and str(meta.get("schema", "")).startswith("chatcap/")


def parse(data: str | bytes, source: str = "<memory>") -> Exchanges:
    """Exchanges from one in-memory input of any supported format."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    result = Exchanges()
    result.extend(_read_bytes(raw, source, result.problems))
    return result


def _read_bytes(raw: bytes, source: str, problems: list[Problem]) -> list[Exchange]:
    try:
        fmt = sniff(raw)
    except NoExchangesFound as exc:
        raise NoExchangesFound(source, exc.reason) from None
    if fmt == "gzip":
        try:
            return _read_bytes(gzip.decompress(raw), source, problems)
        except (OSError, EOFError) as exc:
            raise LoadError(source, f"gzip file does not decompress: {exc}") from None
    if fmt in ("chatcap-jsonl", "jsonl"):
        return list(_read_lines(iter(raw.splitlines(keepends=True)), source, fmt, problems))
    if fmt == "mitmproxy-flows":
        return _read_flows(io.BytesIO(raw), source, _label(source, 0).rsplit("#", 1)[0], problems)
    if fmt == "json":
        return _read_json(raw, source, problems)
    text, notices = _repaired(raw)
    if fmt == "raw-http":
        return _read_raw_http(raw, text, notices, source)
    return [_sse_exchange(text, raw, notices, source)]


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


def _read_lines(
    lines: Iterator[bytes], source: str, fmt: str, problems: list[Problem], tick: Callable[[], None] = lambda: None
) -> Iterator[Exchange]:
    """One exchange per JSON line, read one line at a time; a bad line is a problem, not the end of the file."""
    count = 0
    last_bad: Problem | None = None
    for number, line in enumerate(lines, 1):
        if number % 64 == 0:
            tick()
        if not line.strip():
            continue
        obj = _json_object(line)
        if obj is None or not pairs.is_pair(obj):
            if obj is None and not line.endswith(b"\n"):
                reason = "torn last line (cut off mid-write, e.g. the writer was killed)"
            elif obj is None:
                reason = "not a JSON object"
            else:
                reason = "JSON object without request and response"
            last_bad = Problem(source, f"{reason}; line skipped", f"line {number}")
            problems.append(last_bad)
            continue
        count += 1
        line_fmt = "chatcap-jsonl" if _is_chatcap(obj) else fmt
        yield pairs.exchange_from_pair(
            obj,
            id=_label(source, count),
            source=source,
            position=f"line {number}",
            fmt=line_fmt,
            raw=line.rstrip(b"\r\n"),
        )
    if count == 0:
        raise NoExchangesFound(source, last_bad.reason if last_bad else "no exchanges found")


def _read_json(raw: bytes, source: str, problems: list[Problem]) -> list[Exchange]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LoadError(source, f"invalid JSON: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("log"), dict):
        entries = obj["log"].get("entries")
        if not isinstance(entries, list):
            raise LoadError(source, "HAR file without log.entries")
        del obj
        return list(_har_entries(entries, source, problems))
    if pairs.is_pair(obj):
        if _is_chatcap(obj):  # a capture file with a single line
            return _from_objects([obj], source, "chatcap-jsonl", "line")
        return _from_objects([obj], source, "har-entry" if "startedDateTime" in obj else "json-dump", "")
    if isinstance(obj, list) and obj and all(pairs.is_pair(item) for item in obj):
        return _from_objects(obj, source, "json-dump", "item")
    if (isinstance(obj, dict) and any(key in obj for key in _RESPONSE_KEYS)) or _is_message(obj):
        response = Response(status=None, headers=[("content-type", "application/json")], body=raw)
        return [
            Exchange(
                id=_label(source, 1), source=source, format="response-json", request=None, response=response, raw=raw
            )
        ]
    raise NoExchangesFound(source, "no exchanges found: JSON, but neither a capture, a HAR file nor a response")


# A bare response body in any protocol: chat's `choices`, an error, an `object` (chat
# completion, Responses' response), Gemini's `candidates`.
_RESPONSE_KEYS = ("choices", "error", "object", "candidates")


def _is_message(obj: Any) -> bool:
    """Anthropic's message object."""
    return isinstance(obj, dict) and obj.get("type") == "message" and "content" in obj


def _record(obj: Any) -> bytes:
    """An entry's raw record: its JSON, copied to an exact-size buffer. orjson's own result can
    sit in a block many times its length, and a large HAR keeps thousands of these."""
    return bytes(memoryview(orjson.dumps(obj)))


def _har_entries(
    entries: Iterable[Any], source: str, problems: list[Problem], tick: Callable[[], None] = lambda: None
) -> Iterator[Exchange]:
    """The LLM calls among a HAR file's entries, each judged before its bodies are decoded
    (a browser's HAR is mostly assets); how many were left out is reported as a problem."""
    total = count = skipped = 0
    for total, entry in enumerate(entries, 1):
        if total % 16 == 0:
            tick()
        if not pairs.is_pair(entry):
            continue
        if not pairs.is_llm_pair(entry):
            skipped += 1
            continue
        count += 1
        yield pairs.exchange_from_pair(
            entry,
            id=_label(source, count),
            source=source,
            position=f"entry {total}",
            fmt="har",
            raw=_record(entry),
        )
    if skipped:
        problems.append(Problem(source, f"{skipped} of {total} entries are not LLM API calls: left out"))
    if count == 0:
        if total == 0:
            raise NoExchangesFound(source, "no exchanges found: the HAR file has no entries")
        raise NoExchangesFound(source, f"no exchanges found: none of its {total} entries is an LLM API call")


def _read_flows(
    handle: Any, source: str, label: str, problems: list[Problem], tick: Callable[[], None] = lambda: None
) -> list[Exchange]:
    skipped: list[int] = []
    out: list[Exchange] = []
    try:
        out.extend(flows.read(handle, source, label, skipped, tick))
    except LoadError as exc:
        if not out:
            raise
        problems.append(Problem(source, exc.reason))
    other, non_http = skipped or [0, 0]
    total = len(out) + other + non_http
    if other or non_http:
        kinds = f"{other} not an LLM API call" + (f", {non_http} not HTTP" if non_http else "")
        problems.append(Problem(source, f"{other + non_http} of {total} flows left out ({kinds})"))
    if not out:
        raise NoExchangesFound(source, f"no exchanges found: none of its {total} flows is an LLM API call")
    return out


def _from_objects(items: list[Any], source: str, fmt: str, unit: str) -> list[Exchange]:
    out = []
    for n, item in enumerate(items, 1):
        if not pairs.is_pair(item):
            continue
        position = f"{unit} {n}" if unit else ""
        out.append(
            pairs.exchange_from_pair(
                item, id=_label(source, len(out) + 1), source=source, position=position, fmt=fmt, raw=_record(item)
            )
        )
    if not out:
        raise NoExchangesFound(source, "no exchanges found: no entry has a request and a response")
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


def load(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, progress: bool | None = None
) -> Exchanges:
    """Exchanges from a file, a directory (recursively) or a list of them, in any supported format.

    A single file that cannot be read raises `LoadError`. In a directory or list, bad
    files and bad records are skipped and listed in the result's `problems`.

    `progress`: a progress bar on stderr (or in the notebook) when loading takes more
    than a moment; by default only in a terminal or a Jupyter kernel.
    """
    single = isinstance(paths, (str, os.PathLike))
    roots = _expand([paths] if single else list(paths))
    if single and len(roots) == 1 and not roots[0].exists():
        pattern = any(c in str(roots[0]) for c in "*?[")
        raise LoadError(str(roots[0]), "no file matches this pattern" if pattern else "no such file or directory")
    single = single and len(roots) == 1
    result = Exchanges()
    files: list[tuple[Path, str]] = []
    for root in roots:
        if not root.exists():
            result.problems.append(Problem(str(root), "no such file or directory"))
            continue
        files += [(file, str(file.relative_to(root)) if root.is_dir() else file.name) for file in _files(root)]
    with _Progress(files, progress) as bar:
        if single and roots[0].is_file():
            result.extend(_load_file(roots[0], roots[0].name, result.problems, bar))
            return result
        for file, label in files:
            try:
                result.extend(_load_file(file, label, result.problems, bar))
            except LoadError as exc:
                result.problems.append(Problem(str(file), exc.reason, exc.position))
            bar.next_file()
    return result


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
        if enabled is None:
            enabled = sys.stderr.isatty() or "ipykernel" in sys.modules
        self.bar: Any = None
        self.sizes = [_size(file) for file, _ in files]
        self.done = 0
        self.index = 0
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=sum(self.sizes),
                unit="B",
                unit_scale=True,
                desc="loading",
                delay=PROGRESS_DELAY_S,
                leave="ipykernel" in sys.modules,  # a notebook keeps the finished bar; a terminal clears it
            )

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def at(self, offset: int) -> None:
        """The current file has been read up to `offset`."""
        if self.bar is not None and self.done + offset > self.bar.n:
            self.bar.update(self.done + offset - self.bar.n)  # tqdm redraws at most ~10 times a second

    def next_file(self) -> None:
        if self.index < len(self.sizes):
            self.done += self.sizes[self.index]
            self.index += 1
        self.at(0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _load_file(path: Path, label: str, problems: list[Problem], bar: _Progress | None = None) -> list[Exchange]:
    try:
        with path.open("rb") as handle:
            tick = (lambda: bar.at(handle.tell())) if bar is not None and bar.bar is not None else (lambda: None)
            head = handle.read(_SNIFF_BYTES)
            try:
                fmt = sniff(head)
            except NoExchangesFound as exc:
                raise NoExchangesFound(str(path), exc.reason) from None
            handle.seek(0)
            if fmt in ("chatcap-jsonl", "jsonl"):
                exchanges = list(_read_lines(iter(handle), str(path), fmt, problems, tick))
            elif fmt == "mitmproxy-flows":
                exchanges = _read_flows(handle, str(path), label, problems, tick)
            elif fmt == "json" and _size(path) > STREAM_HAR_BYTES and _looks_like_har(head):
                exchanges = _read_large_har(handle, str(path), problems, tick)
            else:
                exchanges = _read_bytes(handle.read(), str(path), problems)
    except OSError as exc:
        raise LoadError(str(path), exc.strerror or str(exc)) from None
    for n, exchange in enumerate(exchanges, 1):
        exchange.id = f"{label}#{n}"
    return exchanges


def _looks_like_har(head: bytes) -> bool:
    return re.match(rb'\s*\{\s*"log"\s*:', head.lstrip(b"\xef\xbb\xbf")) is not None


def _read_large_har(handle: Any, source: str, problems: list[Problem], tick: Callable[[], None]) -> list[Exchange]:
    """A HAR file read entry by entry: memory holds one entry (and the LLM calls kept), not the file."""
    import ijson

    if handle.read(3) != b"\xef\xbb\xbf":
        handle.seek(0)
    out: list[Exchange] = []
    try:
        out.extend(_har_entries(ijson.items(handle, "log.entries.item", use_float=True), source, problems, tick))
    except ijson.JSONError as exc:
        if not out:
            raise LoadError(source, f"invalid JSON: {exc}") from None
        problems.append(Problem(source, f"HAR file is damaged after {len(out)} LLM call(s): {exc}; the rest is lost"))
    return out
