"""Mutants of the bundled inputs, for the layered fuzz tests (tests/test_fuzz_layers.py).

Seeds are the files the project ships as inputs (the bundled captures, named one by one in
tests/bundled.py, then tests/data/protocols, har, ingest, quirks and seeds), plus a gzip of a
capture and a mitmproxy flow file made from one.
Two kinds of mutant are made from them:

- **type confusion**: one value anywhere in one record replaced by an odd value (`ODD`).
  "Anywhere" reaches through the JSON held inside a record's strings: a request body, a JSON
  response body, and each `data:` line of a stream body (each event's payload, parsed).
  A stream body keeps its `_chunks` offsets in step with the edit, so the read times stay
  valid and the mutant differs from its seed in that one value only.
- **byte damage**: a few flips, insertions, deletions, duplications or a truncation of a
  seed's bytes (of the compressed bytes, for the gzip seed).

Every mutant names its seed, where it was changed and how (`str(mutant)`), so a failure
can be rebuilt by hand; `sample` draws a fixed, reproducible selection from a seeded RNG.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bundled import BUNDLED_CAPTURES, CAPTURES, ROOT

# Capture lines, the seed pastes, then the recordings replayed through the proxy.
SEED_CAPTURES = (
    *(path for path in BUNDLED_CAPTURES if path.parent == CAPTURES and path.suffix == ".jsonl"),
    *(path for path in BUNDLED_CAPTURES if path.parent == CAPTURES and path.suffix == ".txt"),
    *(path for path in BUNDLED_CAPTURES if path.parent == CAPTURES / "replayed"),
)
SEED_GLOBS = (
    "tests/data/protocols/*.jsonl",
    "tests/data/har/*.har",
    "tests/data/ingest/*",
    "tests/data/quirks/*.sse",
    "tests/data/seeds/*.txt",
)
# The capture the gzip and flow-file seeds are made from.
SMALL_CAPTURE = ROOT / "captures" / "replayed" / "reasoning_tool_call.jsonl"


def _deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def _other_container(original: Any) -> str:
    """The value in a container of the wrong kind: a dict's values as a list, a list's items
    as a dict keyed by position, anything else wrapped in a list."""
    if isinstance(original, dict):
        flipped: Any = list(original.values())
    elif isinstance(original, list):
        flipped = {str(n): item for n, item in enumerate(original)}
    else:
        flipped = [original]
    return json.dumps(flipped)


# The odd values, as JSON text (so integers past 64 bits, a lone surrogate and a list nested
# 1,000 deep are written exactly as a hostile producer would write them).
ODD: dict[str, str | Callable[[Any], str]] = {
    "null": "null",
    "true": "true",
    "0": "0",
    "-1": "-1",
    "2**70": str(2**70),
    "-2**70": str(-(2**70)),
    "1e308": "1e308",
    "empty string": '""',
    "superscript two": json.dumps("²"),
    "ANSI escape": json.dumps("\x1b[31m"),
    "NUL": json.dumps("\u0000"),
    "lone surrogate": json.dumps("\ud800"),
    "[]": "[]",
    "{}": "{}",
    "[[]]": "[[]]",
    '{"a": {}}': '{"a":{}}',
    "list nested 1000 deep": _deep_list(1000),
    "100k-char string": json.dumps(("lorem ipsum ¶ " * 7200)[:100_000]),
    "wrong-type container": _other_container,
}


@dataclass(frozen=True)
class Inside:
    """A path step into JSON held in a string: the whole string ("json"), or one of its lines
    (a stream's `data:` line, or a raw HTTP body line), after `prefix`."""

    kind: str
    line: int = -1
    prefix: str = ""

    def __repr__(self) -> str:
        return "<json>" if self.kind == "json" else f"<line {self.line + 1}>"


Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class Seed:
    name: str  # the file name its mutants are written under (prefixed)
    data: bytes  # what the type confusion edits
    wrap: Callable[[bytes], bytes] | None = None  # applied to each mutant (gzip)
    structured: bool = True  # False: byte damage only (a flow file)

    @property
    def file_bytes(self) -> bytes:
        return self.wrap(self.data) if self.wrap else self.data


@dataclass(frozen=True)
class Mutant:
    seed: str
    kind: str  # field, event, embedded (type confusion) or bytes
    where: str
    how: str
    data: bytes
    # The 1-based line of a JSON-lines seed the edit is on, else None.
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.seed} [{self.kind}] {self.where} := {self.how}"


# --- seeds ------------------------------------------------------------------------------


def _flow_file() -> bytes | None:
    """Two exchanges of SMALL_CAPTURE as a mitmproxy flow file (None without mitmproxy)."""
    try:
        from mitmproxy.io import FlowWriter
        from mitmproxy.test import tflow, tutils
    except ImportError:
        return None
    import analyzer

    out = io.BytesIO()
    writer = FlowWriter(out)
    for exchange in analyzer.load(SMALL_CAPTURE)[:2]:
        request = tutils.treq(
            method=b"POST",
            path=b"/v1/chat/completions",
            headers=[(b"content-type", b"application/json")],
            content=exchange.request.body,
        )
        response = tutils.tresp(
            status_code=200, headers=[(b"content-type", b"text/event-stream")], content=exchange.response.body
        )
        flow = tflow.tflow(req=request, resp=response)
        flow.request.timestamp_start, flow.request.timestamp_end = 1000.0, 1000.002
        flow.response.timestamp_start, flow.response.timestamp_end = 1000.352, 1001.250
        # Fixed ids (mitmproxy draws uuids), so the same damage hits the same bytes every run.
        for n, thing in enumerate((flow, flow.client_conn, flow.server_conn)):
            thing.id = f"00000000-0000-4000-8000-{len(out.getvalue()):08d}{n:04d}"
        writer.add(flow)
    return out.getvalue()


@functools.cache
def seeds() -> tuple[Seed, ...]:
    """Every bundled input, and the gzip and flow-file seeds."""
    found = [Seed(path.name, path.read_bytes()) for path in SEED_CAPTURES]
    for pattern in SEED_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and path.name != "expected.json" and path.suffix not in (".md", ".py"):
                found.append(Seed(path.name, path.read_bytes()))
    found.append(
        Seed(SMALL_CAPTURE.name + ".gz", SMALL_CAPTURE.read_bytes(), wrap=lambda data: gzip.compress(data, mtime=0))
    )
    flows = _flow_file()
    if flows is not None:
        found.append(Seed("reasoning_tool_call.mitm", flows, structured=False))
    return tuple(found)


def seed(name: str) -> Seed:
    return next(s for s in seeds() if s.name == name)


# --- the records of a seed, and the places in them --------------------------------------


@functools.cache
def records(name: str) -> tuple[str, tuple[tuple[int | None, Any], ...]]:
    """A seed as ("json", [(None, document)]), ("jsonl", [(line index, record), ...]) or
    ("text", [(None, text)])."""
    data = seed(name).data
    try:
        return "json", ((None, json.loads(data)),)
    except ValueError:
        pass
    lines = data.split(b"\n")
    parsed = {}
    for n, line in enumerate(lines):
        try:
            parsed[n] = json.loads(line)
        except ValueError:
            continue
    if parsed and all(not line.strip() or n in parsed for n, line in enumerate(lines[:-1])):
        return "jsonl", tuple(parsed.items())
    return "text", ((None, data.decode("utf-8", "surrogateescape")),)


def _json_inside(text: str) -> Any:
    if len(text) < 2 or text.lstrip()[:1] not in ("{", "["):
        return _NOTHING
    try:
        value = json.loads(text)
    except ValueError:
        return _NOTHING
    return value if isinstance(value, dict | list) else _NOTHING


_NOTHING: Any = object()
_LINE = re.compile(r"(data: ?|)([\[{].*)\Z", re.S)


def _json_lines(text: str) -> Iterator[tuple[int, str, Any]]:
    """Each line of `text` that is JSON (an object or an array), alone or after `data:`."""
    if "\n" not in text and not text.startswith("data:"):
        return
    for n, line in enumerate(text.split("\n")):
        match = _LINE.match(line.rstrip("\r"))
        if match is None:
            continue
        try:
            value = json.loads(match.group(2))
        except ValueError:
            continue
        if isinstance(value, dict | list):
            yield n, match.group(1), value


def _places(value: Any, path: Path_) -> Iterator[Path_]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))
    elif isinstance(value, str):
        inner = _json_inside(value)
        if inner is not _NOTHING:
            yield from _places(inner, (*path, Inside("json")))
            return
        for n, prefix, payload in _json_lines(value):
            yield from _places(payload, (*path, Inside("line", n, prefix)))


def kind_of(path: Path_) -> str:
    """field: a record's own value; event: inside a stream's `data:` line; embedded: inside
    other JSON held in a string (a request body, a JSON response)."""
    steps = [step for step in path if isinstance(step, Inside)]
    if not steps:
        return "field"
    return "event" if any(step.kind == "line" and step.prefix for step in steps) else "embedded"


@functools.cache
def places(name: str) -> dict[str, tuple[tuple[int | None, Path_], ...]]:
    """Every place in a seed a value can be replaced, by kind: (record's line, path)."""
    shape, found = records(name)
    by_kind: dict[str, list[tuple[int | None, Path_]]] = {}
    for line, record in found:
        for path in _places(record, ()):
            if shape == "text" and not path:
                continue  # the whole text is not a value
            by_kind.setdefault(kind_of(path), []).append((line, path))
    return {kind: tuple(found) for kind, found in by_kind.items()}


# --- replacing one value ----------------------------------------------------------------

_PLACEHOLDER = "\ue000chatcap-fuzz\ue000"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _get(value: Any, path: Path_) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: Path_, new: Any) -> Any:
    """A copy of `value` (copied only along `path`) with the value at `path` set to `new`."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _set(value[head], rest, new)
    return copy


def _json_with(value: Any, path: Path_, raw: str) -> str:
    """The JSON text of `value` with the value at `path` replaced by the JSON text `raw`."""
    inside = next((n for n, step in enumerate(path) if isinstance(step, Inside)), None)
    if inside is None:
        if not path:
            return raw
        return _dumps(_set(value, path, _PLACEHOLDER)).replace(_dumps(_PLACEHOLDER), raw, 1)
    where = path[:inside]
    text = _get(value, where)
    new_text = _text_with(text, path[inside], path[inside + 1 :], raw)
    edited = _set(value, where, new_text)
    if where == ("response", "content", "text") and isinstance(value["response"].get("_chunks"), list):
        edited = _set(edited, ("response", "_chunks"), _shifted(value["response"]["_chunks"], text, new_text))
    return _dumps(edited)


def _text_with(text: str, step: Inside, rest: Path_, raw: str) -> str:
    if step.kind == "json":
        return _json_with(json.loads(text), rest, raw)
    lines = text.split("\n")
    line = lines[step.line]
    end = "\r" if line.endswith("\r") else ""
    payload = json.loads(line.rstrip("\r")[len(step.prefix) :])
    lines[step.line] = step.prefix + _json_with(payload, rest, raw) + end
    return "\n".join(lines)


def _shifted(chunks: list[Any], old: str, new: str) -> list[Any]:
    """`_chunks` offsets moved past an edit of the body from `old` to `new`."""
    before, after = old.encode("utf-8", "surrogatepass"), new.encode("utf-8", "surrogatepass")
    pairs = enumerate(zip(before, after, strict=False))
    same = next((n for n, (a, b) in pairs if a != b), min(len(before), len(after)))  # bytes alike before the edit
    delta = len(after) - len(before)
    return [
        [chunk[0], chunk[1] + delta] if isinstance(chunk, list) and len(chunk) == 2 and chunk[1] > same else chunk
        for chunk in chunks
    ]


def confused(name: str, line: int | None, path: Path_, how: str) -> Mutant:
    """Seed `name` with the value at `path` (in the record on `line`) replaced by ODD[how]."""
    shape, found = records(name)
    record = dict(found)[line]
    odd = ODD[how]
    raw = odd(_get_through(record, path)) if callable(odd) else odd
    if shape == "text":
        text = _text_with(record, path[0], path[1:], raw)
        data = text.encode("utf-8", "surrogateescape")
    elif shape == "json":
        original = seed(name).data
        data = _json_with(record, path, raw).encode("utf-8", "surrogatepass") + original[len(original.rstrip()) :]
    else:
        lines = seed(name).data.split(b"\n")
        lines[line] = _json_with(record, path, raw).encode("utf-8", "surrogatepass")
        data = b"\n".join(lines)
    where = "".join(f"[{step!r}]" for step in path) or "the whole record"
    wrap = seed(name).wrap
    return Mutant(
        name,
        kind_of(path),
        (f"line {line + 1} " if line is not None else "") + where,
        how,
        wrap(data) if wrap else data,
        None if line is None else line + 1,
    )


def _get_through(value: Any, path: Path_) -> Any:
    """The value at `path`, reading through JSON held in strings."""
    for step in path:
        if isinstance(step, Inside):
            if step.kind == "json":
                value = json.loads(value)
            else:
                line = value.split("\n")[step.line].rstrip("\r")
                value = json.loads(line[len(step.prefix) :])
        else:
            value = value[step]
    return value


# --- byte damage ------------------------------------------------------------------------

TOKENS = (
    b"\0", b"\xff", b"\xc3", b"\xe2\x80", b"\r", b"\n", b"\r\n\r\n", b"data: ", b"data: [DONE]\n\n", b"event: ",
    b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\\u", b"\\ud800", b"99999999999999999999999", b"-1", b"null",
    b"HTTP/1.1 200 OK\r\n", b"Content-Length: 99999\r\n", b"Transfer-Encoding: chunked\r\n",
)  # fmt: skip


def damaged(source: Seed, rng: random.Random) -> Mutant:
    """`source`'s file bytes with one to three random edits."""
    data = bytearray(source.file_bytes)
    done = []
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        at = rng.randrange(len(data))
        op = rng.choice(("flip", "overwrite", "insert", "delete", "duplicate", "truncate", "swap lines"))
        if op == "flip":
            bit = 1 << rng.randrange(8)
            data[at] ^= bit
            done.append(f"flip bit {bit:#x} at {at}")
        elif op in ("overwrite", "insert"):
            token = rng.choice(TOKENS)
            data[at : at + (len(token) if op == "overwrite" else 0)] = token
            done.append(f"{op} {token!r} at {at}")
        elif op in ("delete", "duplicate"):
            span = rng.choice((1, 2, 7, 64, 512))
            data[at : at + span] = b"" if op == "delete" else data[at : at + span] * 2
            done.append(f"{op} {span} bytes at {at}")
        elif op == "truncate":
            del data[at:]
            done.append(f"truncate at {at}")
        else:
            lines = bytes(data).split(b"\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            data = bytearray(b"\n".join(lines))
            done.append(f"swap lines {a + 1} and {b + 1}")
    return Mutant(source.name, "bytes", "; ".join(done) or "nothing", "damage", bytes(data))


# --- sampling ---------------------------------------------------------------------------


def sample_confused(count: int, rng: random.Random) -> list[Mutant]:
    """`count` type-confusion mutants: a seed, then a kind of place it has (field, event,
    embedded), then a place of that kind and an odd value, each drawn evenly."""
    structured = [s.name for s in seeds() if s.structured and places(s.name)]
    out = []
    for _ in range(count):
        name = rng.choice(structured)
        by_kind = places(name)
        kind = rng.choice(sorted(by_kind))
        line, path = rng.choice(by_kind[kind])
        out.append(confused(name, line, path, rng.choice(list(ODD))))
    return out


def sample_damaged(count: int, rng: random.Random) -> list[Mutant]:
    """`count` byte-damaged mutants, seeds drawn evenly."""
    every = seeds()
    return [damaged(rng.choice(every), rng) for _ in range(count)]


def every_confused(names: list[str], kinds: tuple[str, ...] = ("event", "embedded")) -> list[Mutant]:
    """Every place of these kinds in the named seeds, with every odd value: a sweep, for what
    sampling reaches too rarely (one field of one protocol's event, with one value)."""
    return [
        confused(name, line, path, how)
        for name in names
        for kind in kinds
        for line, path in places(name).get(kind, ())
        for how in ODD
    ]
