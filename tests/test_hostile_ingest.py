"""Hostile input at the ingest layer: first lines longer than the sniff window, odd values in any
field of a record, readers that were quadratic or unbounded, and decompression bombs. What each
reader bounds, and how: docs/hostile-input.md.

Bounds on work and memory are asserted in a child process (its peak RSS, and a generous timeout),
never as measured speed; the measurements themselves are in benchmarks/large_inputs.py.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer
import analyzer.frames
import analyzer.ingest
from analyzer.errors import LoadError
from analyzer.ingest import BODY_CAP, RECORD_CAP
from analyzer.model import Exchange, Notice

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
DATA = ROOT / "tests" / "data"
MiB = 1024 * 1024


def _capture_lines(name: str) -> list[bytes]:
    return (CAPTURES / name).read_bytes().splitlines()


def _entry(name: str = "tool_calls.jsonl", n: int = 0) -> dict[str, Any]:
    return orjson.loads(_capture_lines(name)[n])


def _jsonl(*records: dict[str, Any] | bytes) -> bytes:
    """JSON lines, written by the standard library (which writes integers past 64 bits and lone
    surrogates as they are) unless given as bytes."""
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def _har(*entries: dict[str, Any]) -> bytes:
    return json.dumps(
        {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}}
    ).encode()


def _child(code: str, timeout: float = 120) -> dict[str, Any]:
    """Run `code` in a fresh Python; it sets `result` (a dict). Returns it with `grown_mb`: how far
    the child's peak RSS rose above its RSS after its imports (VmHWM, reset through clear_refs:
    ru_maxrss would count the parent's memory from before the exec)."""
    program = (
        textwrap.dedent(
            """
        import json
        import analyzer, analyzer.ingest, analyzer.ingest.text, numpy, brotli, zstandard
        def _memory_mb(field):
            with open("/proc/self/status") as handle:
                return next(int(line.split()[1]) for line in handle if line.startswith(field)) / 1024
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # the peak starts again from here
        _base = _memory_mb("VmRSS:")
        result = {}
        """
        )
        + textwrap.dedent(code)
        + textwrap.dedent(
            """
        result["grown_mb"] = _memory_mb("VmHWM:") - _base
        print(json.dumps(result))
        """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- 1. a first line longer than the sniff window -------------------------------------------------


def _long_line_entry(size: int) -> bytes:
    """A capture line of about `size` bytes: the tool-call exchange with a long system prompt."""
    entry = _entry()
    body = orjson.loads(entry["request"]["postData"]["text"])
    body["messages"][0]["content"] += " " + "long context. " * (size // 14)
    entry["request"]["postData"]["text"] = orjson.dumps(body).decode()
    return orjson.dumps(entry)


@pytest.mark.parametrize("size", [70 * 1024, 3 * MiB], ids=["70KiB", "3MiB"])
def test_a_capture_whose_first_line_is_longer_than_the_sniff_window_loads_every_line(tmp_path: Path, size: int) -> None:
    first = _long_line_entry(size)
    data = first + b"\n" + _capture_lines("tool_calls.jsonl")[1] + b"\n"
    path = tmp_path / "long.jsonl"
    path.write_bytes(data)
    assert analyzer.ingest.sniff(data) == "chatcap-jsonl"
    for loaded in (analyzer.load(path), analyzer.parse(data)):
        assert len(loaded) == 2 and not loaded.problems
        assert loaded[0].raw == first and loaded[0].format == "chatcap-jsonl"
        assert loaded[0].reconstruct().choices[0].tool_calls


def test_a_long_first_line_and_a_torn_later_line_keep_every_good_line(tmp_path: Path) -> None:
    good = _capture_lines("tool_calls.jsonl")[1]
    path = tmp_path / "torn.jsonl"
    path.write_bytes(_long_line_entry(200 * 1024) + b"\n" + good + b"\n" + good[:-300])
    loaded = analyzer.load(path)
    assert len(loaded) == 2
    assert [str(p) for p in loaded.problems] == [
        f"{path} line 3: torn last line (cut off mid-write, e.g. the writer was killed); line skipped"
    ]


def test_a_torn_first_line_does_not_lose_the_lines_after_it(tmp_path: Path) -> None:
    lines = _capture_lines("tool_calls.jsonl")
    path = tmp_path / "torn_first.jsonl"
    path.write_bytes(lines[0][:500] + b"\n" + lines[0] + b"\n" + lines[1] + b"\n")
    loaded = analyzer.load(path)
    assert [x.position for x in loaded] == ["line 2", "line 3"]
    assert [str(p) for p in loaded.problems] == [f"{path} line 1: not a JSON object; line skipped"]


@pytest.mark.slow
def test_a_first_line_past_the_record_cap_is_skipped_and_the_rest_loads(tmp_path: Path) -> None:
    path = tmp_path / "huge_first.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"request": {"method": "POST"}, "response": {"content": {"text": "')
        block = b"a" * MiB
        for _ in range(RECORD_CAP // MiB + 1):
            handle.write(block)
        handle.write(b'"}}}\n')
        first_line = handle.tell()
        handle.write(b"\n".join(_capture_lines("tool_calls.jsonl")) + b"\n")
    result = _child(
        f"""
        loaded = analyzer.load({str(path)!r})
        result["exchanges"] = [x.position for x in loaded]
        result["problems"] = [str(p) for p in loaded.problems]
        """
    )
    assert result["exchanges"] == ["line 2", "line 3"]
    assert len(result["problems"]) == 1
    assert f"line 1: line of {first_line:,} bytes is longer than {RECORD_CAP:,}" in result["problems"][0]
    assert result["grown_mb"] < 2 * RECORD_CAP / MiB


# -- 2. odd values in any field -------------------------------------------------------------------


def _set(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(record))  # a deep copy
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    return out


def _base64_text_not_a_string(record: dict[str, Any]) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(record))  # a deep copy
    out["response"]["content"].update(encoding="base64", text=12345)
    return out


# (name, how the record is changed, the notice code the exchange gets, whether the body is kept)
ODD_FIELDS = [
    ("status-superscript-two", ("response", "status"), "²", "bad_status", True),
    ("status-past-int16", ("response", "status"), 40000, "bad_status", True),
    ("status-negative", ("response", "status"), -200, "bad_status", True),
    ("status-past-2**64", ("response", "status"), 2**70, "bad_status", True),
    ("base64-text-not-a-string", _base64_text_not_a_string, None, "odd_field", False),
    ("redacted-not-a-list", ("_chatcap", "redacted"), 5, "odd_field", True),
    ("warnings-not-a-list", ("_chatcap", "warnings"), 5, "odd_field", True),
    ("method-not-a-string", ("request", "method"), 5, "odd_field", True),
    ("url-with-a-broken-ipv6-bracket", ("request", "url"), "http://[::1/v1/chat/completions", "bad_url", True),
    ("url-lone-surrogate", ("request", "url"), "http://h/v1/chat/completions\ud800", "lone_surrogate", True),
    ("chunk-end-past-2**64", ("response", "_chunks"), [[1.5, 2**70]], "bad_chunks", True),
    ("timing-past-2**64", ("timings", "wait"), 2**70, "odd_field", True),
    ("header-value-an-object", ("request", "headers"), [{"name": "x", "value": {"a": {}}}], "odd_field", True),
]


@pytest.mark.parametrize(
    ("change", "value", "code", "body_kept"),
    [pytest.param(*row[1:], id=row[0]) for row in ODD_FIELDS],
)
def test_an_odd_field_is_a_notice_and_the_rest_of_the_record_loads(
    change: Any, value: Any, code: str, body_kept: bool
) -> None:
    good = _entry()
    odd = change(good) if callable(change) else _set(good, change, value)
    loaded = analyzer.parse(_jsonl(good, odd, good))
    assert [x.position for x in loaded] == ["line 1", "line 2", "line 3"] and not loaded.problems
    assert code in {w.code for w in loaded[1].warnings}
    assert not {w.code for w in loaded[0].warnings} & {code}
    odd_rec = loaded[1].reconstruct()
    if body_kept:
        expected, got = loaded[0].reconstruct().choices[0], odd_rec.choices[0]
        assert (got.content, got.tool_calls) == (expected.content, expected.tool_calls)
    analyzer.frames.exchanges(loaded)


def test_a_content_length_that_is_not_ascii_digits_is_not_honoured() -> None:
    text = (DATA / "ingest" / "raw_http_two_exchanges.txt").read_bytes()
    odd = text.replace(
        b"Content-Type: application/json", b"Content-Length: \xc2\xb2\r\nContent-Type: application/json", 1
    )
    assert odd != text
    loaded = analyzer.parse(odd)
    assert len(loaded) == len(analyzer.parse(text))
    assert loaded[0].request.body == analyzer.parse(text)[0].request.body


def test_a_json_dump_list_with_one_item_not_a_pair_keeps_the_others() -> None:
    good = _entry()
    loaded = analyzer.parse(json.dumps([good, {"request": 5, "response": {}}, good]))
    assert [x.position for x in loaded] == ["item 1", "item 3"]
    assert [str(p) for p in loaded.problems] == ["<memory> item 2: not an object with request and response; skipped"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bit=st.integers(min_value=0))
def test_a_corrupt_gzip_file_is_a_one_line_error_never_a_zlib_error(bit: int) -> None:
    packed = bytearray(gzip.compress(b"\n".join(_capture_lines("tool_calls.jsonl")) + b"\n", mtime=0))
    bit %= len(packed) * 8
    packed[bit // 8] ^= 1 << (bit % 8)
    try:
        loaded = analyzer.parse(bytes(packed), "x.jsonl.gz")
    except LoadError as exc:
        assert str(exc).startswith("x.jsonl.gz") and "\n" not in str(exc)
        return
    for exchange in loaded:
        exchange.reconstruct()


def test_a_gzip_capture_cut_short_keeps_the_lines_before_the_cut(tmp_path: Path) -> None:
    lines = _capture_lines("replayed/conversation.jsonl")
    packed = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    loaded = analyzer.load(path)
    assert [x.raw for x in loaded] == lines[: len(loaded)] and len(loaded) >= 2
    assert "the gzip stream is damaged or cut short after" in str(loaded.problems[-1])


def _flow_file(count: int) -> bytes:
    pytest.importorskip("mitmproxy")
    from mitmproxy.io import FlowWriter
    from mitmproxy.test import tflow, tutils

    exchange = analyzer.load(CAPTURES / "replayed" / "conversation.jsonl")[0]
    out = io.BytesIO()
    writer = FlowWriter(out)
    for _ in range(count):
        request = tutils.treq(
            method=b"POST",
            path=b"/v1/chat/completions",
            headers=[(b"content-type", b"application/json")],
            content=exchange.request.body,
        )
        response = tutils.tresp(
            status_code=200, headers=[(b"content-type", b"text/event-stream")], content=exchange.response.body
        )
        writer.add(tflow.tflow(req=request, resp=response))
    return out.getvalue()


FLOWS = 3


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(at=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_a_damaged_flow_file_keeps_the_flows_before_the_damage_and_never_raises_past_load_error(
    at: int, byte: int
) -> None:
    one = _flow_file(1)
    data = bytearray(_flow_file(FLOWS))
    at = len(one) * (FLOWS - 1) + at % len(one)  # somewhere in the last flow
    data[at] = byte
    try:
        loaded = analyzer.parse(bytes(data), "x.flows")
    except LoadError as exc:
        pytest.fail(f"the flows before the damage were lost: {exc}")
    assert len(loaded) >= FLOWS - 1
    for exchange in loaded:
        exchange.reconstruct()


# The sweep: every field of a record from each bundled input format, replaced by each odd value.

DEEP = "__deep__"  # a placeholder for a list nested 1,000 deep, put in as text
ODD_VALUES: list[Any] = [
    None,
    True,
    -1,
    2**70,
    -(2**70),
    1.5,
    1e300,
    "",
    "²",
    "\x00",
    "\ud800",
    "http://[::1/x",
    [],
    {},
    [[]],
    {"a": {}},
    [1, 2],
    DEEP,
    "y" * 70_000,
]
# Fields set even when a record does not have them.
EXTRA_FIELDS = [
    ("_error",),
    ("_chatcap",),
    ("_chatcap", "warnings"),
    ("_chatcap", "redacted"),
    ("_chatcap", "complete"),
    ("response", "_chunks"),
    ("response", "content", "encoding"),
    ("request", "postData", "params"),
    ("_webSocketMessages",),
    ("timings",),
]


def _bases() -> list[tuple[str, dict[str, Any]]]:
    """One record per bundled input kind: capture lines of each protocol and shape, HAR entries as
    each producer writes them, a `{request, response}` dump, a WebSocket entry."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name in ("tool_calls.jsonl", "four_protocols.jsonl", "errors.jsonl", "truncated.jsonl"):
        out += [(f"{name}:{n}", orjson.loads(line)) for n, line in enumerate(_capture_lines(name)[:4])]
    for name in ("replayed/gzip_stream.jsonl", "replayed/two_choices.jsonl", "replayed/client_abort.jsonl"):
        out.append((name, orjson.loads(_capture_lines(name)[0])))
    extra = [DATA / "ingest" / "gzip_body.har", DATA / "ingest" / "browser_mixed.har"]
    for har in [*sorted((DATA / "har").glob("*.har")), *extra]:
        entries = orjson.loads(har.read_bytes())["log"]["entries"]
        llm = [e for e in entries if analyzer.ingest.pairs.is_llm_pair(e)]
        out.append((har.name, llm[0]))
    out.append(("dump_variant_shapes.json", orjson.loads((DATA / "ingest" / "dump_variant_shapes.json").read_bytes())))
    chunk = json.dumps(
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
    )
    websocket = _set(_entry(), ("_webSocketMessages",), [{"type": "receive", "time": 1.0, "opcode": 1, "data": chunk}])
    del websocket["_chatcap"]
    out.append(("websocket", websocket))
    return out


def _paths(record: Any, prefix: tuple[Any, ...] = (), depth: int = 4) -> Iterator[tuple[Any, ...]]:
    """Every field down to `depth` levels (a list's first and last item)."""
    if depth == 0:
        return
    if isinstance(record, dict):
        keys: list[Any] = [k for k in record if k != "comment"]
    elif isinstance(record, list) and record:
        keys = sorted({0, len(record) - 1})
    else:
        return
    for key in keys:
        yield (*prefix, key)
        yield from _paths(record[key], (*prefix, key), depth - 1)


def _mutants(record: dict[str, Any], full: bool, seed: int, share: int) -> list[tuple[tuple[Any, ...], Any]]:
    """(field, odd value) pairs: all of them (`full`), or else every `SHARES`th field (the
    `share`th), the value turning with the field, and in one container of four each value once:
    the four containers between them try every field and every value on every record."""
    paths = list(dict.fromkeys([*_paths(record), *EXTRA_FIELDS]))
    if full:
        return [(path, value) for path in paths for value in ODD_VALUES]
    picks = [(path, ODD_VALUES[(seed + n) % len(ODD_VALUES)]) for n, path in enumerate(paths) if n % SHARES == share]
    if seed % SHARES == share:
        picks += [(paths[(seed * 7 + n) % len(paths)], value) for n, value in enumerate(ODD_VALUES)]
    return picks


SHARES = 4


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record).replace(json.dumps(DEEP), "[" * 1000 + "]" * 1000)


def _container(kind: str, records: list[str]) -> bytes:
    if kind == "jsonl":
        return "".join(f"{r}\n" for r in records).encode("utf-8", "surrogatepass")
    if kind == "json-dump":
        return f"[{','.join(records)}]".encode("utf-8", "surrogatepass")
    return f'{{"log":{{"version":"1.2","entries":[{",".join(records)}]}}}}'.encode("utf-8", "surrogatepass")


def _well_typed(exchange: Exchange) -> None:
    """What every later stage may take for granted about an Exchange, whatever the input held."""
    request, response = exchange.request, exchange.response
    if request is not None:
        assert request.method is None or isinstance(request.method, str)
        assert request.url is None or (isinstance(request.url, str) and urlsplit(request.url) is not None)
        assert request.body is None or isinstance(request.body, bytes)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.headers)
    if response is not None:
        assert response.status is None or (type(response.status) is int and 100 <= response.status <= 999)
        assert isinstance(response.body, bytes) and len(response.body) <= BODY_CAP
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in response.headers)
        assert response.chunks is None or all(
            type(t) is float and math.isfinite(t) and type(end) is int and 0 <= end < 2**63
            for t, end in response.chunks
        )
    assert exchange.timings is None or all(type(v) is float and math.isfinite(v) for v in exchange.timings.values())
    assert exchange.error is None or isinstance(exchange.error, str)
    assert exchange.complete is None or isinstance(exchange.complete, bool)
    assert all(isinstance(name, str) for name in exchange.redacted)
    assert all(
        isinstance(w, Notice) and isinstance(w.code, str) and isinstance(w.message, str) for w in exchange.warnings
    )


def _reported(problems: list[analyzer.Problem]) -> int:
    """How many records the problems account for: one each when they name a position, the count
    of '... and N more', and the N of 'N of M entries are not LLM API calls'."""
    total = 0
    for problem in problems:
        reason = problem.reason
        if reason.startswith("... and "):
            total += int(reason.split()[2].replace(",", ""))
        elif " entries are not LLM API calls" in reason:
            total += int(reason.split()[0])
        elif problem.position:
            total += 1
    return total


def _sweep_one(
    name: str, record: dict[str, Any], kind: str, full: bool, seed: int, share: int, tmp: Path
) -> analyzer.Exchanges:
    good = _dumps({**record, "_probe": "good"})
    mutants = _mutants(record, full, seed, share)
    records = [good]
    for n, (path, value) in enumerate(mutants):
        records += [_dumps({**_set(record, path, value), "_probe": f"mutant-{n}"}), good]
    data = _container(kind, records)
    file = tmp / f"sweep.{kind}"
    file.write_bytes(data)
    loaded = analyzer.load(file)  # raises nothing: good records are there
    assert sum(b'"_probe":"good"' in x.raw.replace(b": ", b":") for x in loaded) == len(mutants) + 1, name
    kept = sum(b'"_probe":"mutant-' in x.raw.replace(b": ", b":") for x in loaded)
    assert kept + _reported(loaded.problems) >= len(mutants), (name, [str(p) for p in loaded.problems])
    for exchange in loaded:
        _well_typed(exchange)
        exchange.reconstruct()
    return loaded


SWEEP_FULL = os.environ.get("CHATCAP_HOSTILE_SWEEP") == "full"


@pytest.mark.parametrize(("share", "kind"), list(enumerate(["jsonl", "har", "har-streamed", "json-dump"])))
def test_one_odd_field_in_a_record_never_raises_and_never_costs_the_good_records(
    share: int, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each field of each base record replaced by an odd value (a quarter of the fields per
    container and each value at least once, or every pair in every container with
    CHATCAP_HOSTILE_SWEEP=full: about 20 s a container), the mutants between good copies:
    loading raises nothing, every good copy loads, every mutant loads or is reported, every
    exchange is well typed and reconstructs, and the frames build."""
    if kind == "har-streamed":
        monkeypatch.setattr(analyzer.ingest, "STREAM_HAR_BYTES", 0)
    exchanges: list[Exchange] = []
    for seed, (name, record) in enumerate(_bases()):
        container = "har" if kind == "har-streamed" else kind
        exchanges += _sweep_one(name, record, container, SWEEP_FULL, seed, share, tmp_path)
    analyzer.frames.exchanges(exchanges)


# -- 3. readers that were quadratic or unbounded --------------------------------------------------


def test_raw_http_with_20000_exchanges_is_read_in_time_linear_in_its_length(tmp_path: Path) -> None:
    """Each exchange used to copy the rest of the text twice: 31 s for 6 MB of exchanges, and for
    these 17 MB minutes; 100,000 exchanges never ended. Now about a second."""
    one = (DATA / "ingest" / "raw_http_two_exchanges.txt").read_bytes().rstrip() + b"\n\n"
    path = tmp_path / "many.txt"
    path.write_bytes(one * 10_000)
    expected = 2 * 10_000
    result = _child(f"result['exchanges'] = len(analyzer.load({str(path)!r}))", timeout=20)
    assert result["exchanges"] == expected


def test_a_har_entry_nested_20000_deep_is_a_problem_for_that_entry_only(tmp_path: Path) -> None:
    """ijson's builder took 0.9 GB for this entry (8 GB at 100,000 deep); entries are now parsed
    one at a time by orjson, which stops at 1,024 levels."""
    good = _entry()
    deep = json.dumps({**good, "_deep": "@"}).replace('"@"', "[" * 20_000 + "]" * 20_000)
    path = tmp_path / "deep.har"
    path.write_bytes(
        f'{{"log": {{"version": "1.2", "entries": [{json.dumps(good)}, {deep}, {json.dumps(good)}]}}}}'.encode()
    )
    for stream in (False, True):
        result = _child(
            f"""
            analyzer.ingest.STREAM_HAR_BYTES = 0 if {stream} else analyzer.ingest.STREAM_HAR_BYTES
            loaded = analyzer.load({str(path)!r})
            result["positions"] = [x.position for x in loaded]
            result["problems"] = [str(p) for p in loaded.problems]
            """
        )
        assert result["positions"] == ["entry 1", "entry 3"]
        assert result["problems"] == [f"{path} entry 2: nested deeper than 1,024 levels; entry skipped"]
        assert result["grown_mb"] < 100


def test_a_post_of_messages_nested_past_the_recursion_limit_to_another_path_is_left_out_as_not_an_llm_call(
    tmp_path: Path,
) -> None:
    """A JSON body with "messages" on a path no LLM API uses is read to decide; nested 5,000
    deep it is not an LLM call (it was a RecursionError, and the entry "could not be read")."""
    body = '{"messages":' + "[" * 5000 + "]" * 5000 + "}"
    entry = {
        "startedDateTime": "2026-01-01T00:00:00Z",
        "time": 1,
        "request": {"method": "POST", "url": "https://h/x", "httpVersion": "HTTP/1.1", "headers": [
            {"name": "content-type", "value": "application/json"}], "postData": {"mimeType": "application/json", "text": body}},
        "response": {"status": 200, "httpVersion": "HTTP/1.1", "headers": [], "content": {"mimeType": "application/json", "text": "{}"}},
    }  # fmt: skip
    path = tmp_path / "deep-post.har"
    path.write_bytes(_har(entry))
    with pytest.raises(analyzer.LoadError, match="none of its 1 entries is an LLM API call"):
        analyzer.load(path)


def test_an_integer_past_2_64_loads_alike_from_a_small_and_a_large_har(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """yajl (ijson's backend) refused the whole file for one such integer; orjson reads it as a float."""
    good = _entry()
    odd = {**good, "_trace_id": 2**70}
    path = tmp_path / "big_int.har"
    path.write_bytes(_har(good, odd, good))
    whole = analyzer.load(path)
    monkeypatch.setattr(analyzer.ingest, "STREAM_HAR_BYTES", 0)
    streamed = analyzer.load(path)
    assert len(whole) == 3 and b'"_trace_id":1.1805916207174113e+21' in whole[1].raw
    assert [x.raw for x in streamed] == [x.raw for x in whole]
    assert [str(p) for p in streamed.problems] == [str(p) for p in whole.problems] == []


def test_100000_bad_lines_are_a_handful_of_problems_and_of_lines_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "noise.jsonl"
    path.write_bytes(_capture_lines("tool_calls.jsonl")[0] + b"\n" + b"not json\n" * 100_000)
    loaded = analyzer.load(path)
    assert len(loaded) == 1
    assert [str(p) for p in loaded.problems] == [
        *(f"{path} line {n}: not a JSON object; line skipped" for n in range(2, 7)),
        f"{path}: ... and 99,995 more bad lines",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "summary", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and len(done.stderr.splitlines()) == 6


# -- 4. decompression bombs -----------------------------------------------------------------------


def _compressed(encoding: str, data: bytes, repeat: int) -> bytes:
    """`data` `repeat` times over, compressed a block at a time (never whole in memory)."""
    if encoding == "br":
        import brotli

        packer: Any = brotli.Compressor(quality=5)
        return b"".join([*(packer.process(data) for _ in range(repeat)), packer.finish()])
    if encoding == "zstd":
        import zstandard

        packer = zstandard.ZstdCompressor().compressobj()
        return b"".join([*(packer.compress(data) for _ in range(repeat)), packer.flush()])
    packer = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return b"".join([*(packer.compress(data) for _ in range(repeat)), packer.flush()])


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_a_body_bomb_keeps_its_first_body_cap_bytes_in_bounded_memory(tmp_path: Path, encoding: str) -> None:
    """A few kB of a HAR body that decodes to 200 MiB: the first BODY_CAP bytes, a notice, and the
    memory of about one body (a 3 kB brotli body took 2.1 GB before)."""
    bomb = _compressed(encoding, b"data: " + b"a" * (MiB - 6), 200)
    entry = _entry()
    del entry["_chatcap"]  # a HAR entry from any producer: its body is decoded here
    entry["response"]["headers"].append({"name": "content-encoding", "value": encoding})
    entry["response"]["content"] = {
        "mimeType": "text/event-stream",
        "encoding": "base64",
        "text": base64.b64encode(bomb).decode(),
    }
    path = tmp_path / "bomb.har"
    path.write_bytes(_har(entry))
    result = _child(
        f"""
        loaded = analyzer.load({str(path)!r})
        body = loaded[0].response.body
        result["size"], result["start"] = len(body), body[:6].decode()
        result["codes"] = [w.code for w in loaded[0].warnings]
        """
    )
    assert (result["size"], result["start"]) == (BODY_CAP, "data: ")
    assert "body_capped" in result["codes"]
    assert result["grown_mb"] < 2 * BODY_CAP / MiB


def test_a_gzip_file_inside_a_gzip_file_is_not_unpacked_again(tmp_path: Path) -> None:
    inner = _compressed("gzip", bytes(MiB), 200)
    path = tmp_path / "nested.jsonl.gz"
    path.write_bytes(gzip.compress(inner))
    result = _child(
        f"""
        try:
            analyzer.load({str(path)!r})
        except analyzer.LoadError as exc:
            result["error"] = str(exc)
        """
    )
    assert result["error"] == f"{path}: a gzip file inside a gzip file: not unpacked again (gunzip it once first)"
    assert result["grown_mb"] < 2 * BODY_CAP / MiB


def test_a_gzip_capture_is_read_line_by_line_and_a_line_past_the_cap_is_skipped(tmp_path: Path) -> None:
    """A gzipped capture whose second line decompresses to more than RECORD_CAP: the other lines
    load, that one is reported, and memory stays near one line's cap (it held the whole file)."""
    lines = _capture_lines("tool_calls.jsonl")
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    start, end = b'{"request": {}, "response": {"content": {"text": "', b'"}}}\n'
    parts = [packer.compress(lines[0] + b"\n" + start)]
    parts += [packer.compress(b"a" * MiB) for _ in range(RECORD_CAP // MiB + 2)]
    parts += [packer.compress(end + lines[1] + b"\n"), packer.flush()]
    second_line = len(start) + (RECORD_CAP // MiB + 2) * MiB + len(end)
    path = tmp_path / "capture.jsonl.gz"
    path.write_bytes(b"".join(parts))
    result = _child(
        f"""
        loaded = analyzer.load({str(path)!r})
        result["positions"] = [x.position for x in loaded]
        result["problems"] = [str(p) for p in loaded.problems]
        """
    )
    assert result["positions"] == ["line 1", "line 3"]
    assert len(result["problems"]) == 1 and f"line 2: line of {second_line:,} bytes" in result["problems"][0]
    assert result["grown_mb"] < 2 * RECORD_CAP / MiB


def test_a_gzipped_text_dump_past_the_body_cap_keeps_its_first_body_cap_bytes(tmp_path: Path) -> None:
    path = tmp_path / "stream.txt.gz"
    path.write_bytes(
        _compressed("gzip", b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n' * 16384, 200)
    )
    result = _child(
        f"""
        loaded = analyzer.load({str(path)!r})
        result["size"] = len(loaded[0].response.body)
        result["problems"] = [str(p) for p in loaded.problems]
        """
    )
    assert result["size"] == BODY_CAP
    assert result["problems"] == [
        f"{path}: decompresses to more than {BODY_CAP:,} bytes (a decompression bomb?): read the first {BODY_CAP:,}"
    ]
    assert result["grown_mb"] < 3 * BODY_CAP / MiB


def _gzip_sse_entry(body: bytes) -> dict[str, Any]:
    entry = _entry()
    del entry["_chatcap"]
    entry["response"]["headers"].append({"name": "content-encoding", "value": "gzip"})
    entry["response"]["content"] = {
        "mimeType": "text/event-stream",
        "encoding": "base64",
        "text": base64.b64encode(body).decode(),
    }
    return entry


def test_a_gzip_body_holding_another_gzip_stream_is_decoded_once_with_a_notice() -> None:
    stream = _entry()["response"]["content"]["text"].encode()
    loaded = analyzer.parse(_har(_gzip_sse_entry(gzip.compress(gzip.compress(stream)))))
    assert loaded[0].response.body == gzip.compress(stream)
    assert "nested_compression" in {w.code for w in loaded[0].warnings}


def test_a_gzip_body_cut_short_keeps_the_events_that_arrived() -> None:
    stream = _entry()["response"]["content"]["text"].encode()
    packed = gzip.compress(stream)
    loaded = analyzer.parse(_har(_gzip_sse_entry(packed[: len(packed) * 2 // 3])))
    body = loaded[0].response.body
    assert body and stream.startswith(body) and len(body) < len(stream)
    assert "content_cut_short" in {w.code for w in loaded[0].warnings}
    assert loaded[0].reconstruct().chunks
