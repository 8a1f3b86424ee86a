"""`chatcap convert`: any loadable file to one HAR 1.2 file or to capture lines, and back,
without losing anything a reconstruction uses."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from bundled import BUNDLED_CAPTURES, captures_as_cloned
from child_memory import capture_lines, peak_rss

import analyzer
from analyzer.export import har
from analyzer.model import dumps_exact

ROOT = Path(__file__).resolve().parent.parent
INPUTS = sorted(
    [
        *BUNDLED_CAPTURES,
        *(p for p in (ROOT / "tests" / "data" / "ingest").rglob("*") if p.is_file() and p.suffix != ".md"),
    ]
)


def _view(exchange: analyzer.Exchange) -> dict[str, Any]:
    """Everything a reconstruction gives a user, as plain data."""
    rec = exchange.reconstruct()
    timing = dataclasses.asdict(rec.timing)
    return {
        "openai": rec.to_openai(),
        "warnings": [(w.code, w.message) for w in rec.warnings],
        "timing": timing,
        "chunks": [(c.seq, c.t_ms, c.created) for c in rec.chunks],
        "status": exchange.response.status if exchange.response else None,
        "request": exchange.request.json() if exchange.request else None,
        "error": exchange.error,
        "complete": exchange.complete,
        "started_at": exchange.started_at,
    }


def _redacted_view(exchange: analyzer.Exchange) -> dict[str, Any]:
    """The view after redaction: request bodies lose their secrets in every export."""
    view = _view(exchange)
    view["request"] = orjson.loads(har.entry(exchange)["request"]["postData"]["text"]) if view["request"] else None
    return view


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_har_jsonl_har_round_trip_loses_nothing_a_reconstruction_uses(path: Path, tmp_path: Path) -> None:
    original = analyzer.load(path)
    first = analyzer.load(har.har(original, tmp_path / "a.har"))
    lines = analyzer.load(har.jsonl(first, tmp_path / "b.jsonl"))
    again = analyzer.load(har.har(lines, tmp_path / "c.har"))
    assert len(original) == len(first) == len(lines) == len(again)
    for before, after in zip(original, again, strict=True):
        assert _view(after) == _redacted_view(before)
        assert after.format == "har" and after.raw  # raw bytes: the entry as written
    assert [x.format for x in lines] == ["chatcap-jsonl"] * len(lines)


def test_har_file_has_every_field_har_1_2_requires(tmp_path: Path) -> None:
    exchanges = analyzer.load(captures_as_cloned())
    log = orjson.loads(har.har(exchanges, tmp_path / "all.har").read_bytes())["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "chatcap" and log["pages"] == []
    assert len(log["entries"]) == len(exchanges)
    for entry in log["entries"]:
        assert {"startedDateTime", "time", "request", "response", "cache", "timings"} <= entry.keys()
        assert {
            "method",
            "url",
            "httpVersion",
            "cookies",
            "headers",
            "queryString",
            "headersSize",
            "bodySize",
        } <= entry["request"].keys()
        assert {"status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL",
                "headersSize", "bodySize"} <= entry["response"].keys()  # fmt: skip
        assert {"size", "mimeType"} <= entry["response"]["content"].keys()
        assert all(isinstance(entry["timings"][k], (int, float)) for k in ("send", "wait", "receive"))
        assert all(not k.startswith("_") for k in entry if k not in ("_chatcap", "_error"))  # extensions under _


def test_secrets_never_reach_a_converted_file(tmp_path: Path) -> None:
    written = har.har(analyzer.load(ROOT / "captures" / "000_d638e083d5fc0320.txt"), tmp_path / "x.har").read_text()
    assert "eyJ" not in written and "<redacted:" in written
    assert '"redacted":["Authorization"]' in written.replace(" ", "").replace("\n", "")


def test_unknown_start_time_is_not_invented_on_the_way_back(tmp_path: Path) -> None:
    (bare,) = analyzer.load(ROOT / "captures" / "002_22fabd0d0adae130.txt")  # a bare stream: no time, no Date
    entry = har.entry(bare)
    assert entry["startedDateTime"].startswith("1970-01-01") and entry["_chatcap"]["startedDateTime_from"]
    (back,) = analyzer.parse(orjson.dumps({"log": {"entries": [entry]}}))
    assert back.started_at is None


def test_dated_by_the_date_header_when_that_is_all_there_is() -> None:
    (seed,) = analyzer.load(ROOT / "captures" / "000_d638e083d5fc0320.txt")
    entry = har.entry(seed)
    assert entry["startedDateTime"] == "2025-04-15T18:10:25.000Z"
    assert "Date header" in entry["_chatcap"]["startedDateTime_from"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analyzer", *args], capture_output=True, text=True, timeout=60)


def test_cli_convert_both_ways(tmp_path: Path) -> None:
    replayed = captures_as_cloned() / "replayed"  # a directory: the bundled recordings alone
    out = _cli("convert", str(replayed), "--to", "har", "--out", str(tmp_path / "r.har"))
    assert out.returncode == 0, out.stderr
    count = len(analyzer.load(replayed))
    assert out.stdout.strip() == f"wrote {count} exchange(s) to {tmp_path / 'r.har'}"
    back = _cli("convert", str(tmp_path / "r.har"), "--to", "jsonl", "--out", str(tmp_path / "r.jsonl"))
    assert back.returncode == 0, back.stderr
    assert len((tmp_path / "r.jsonl").read_bytes().splitlines()) == count


def test_cli_convert_of_nothing_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("just some notes\n")
    result = _cli("convert", str(tmp_path / "notes.txt"), "--to", "har", "--out", str(tmp_path / "x.har"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no exchanges found" in result.stderr and not (tmp_path / "x.har").exists()


@pytest.mark.slow
@pytest.mark.parametrize("to", ["har", "jsonl"])
def test_convert_memory_does_not_grow_with_a_50_mb_capture(to: str, tmp_path: Path) -> None:
    """Read and written an exchange at a time: 1,600 exchanges of 32 kB take far less than the file
    beyond what one takes (holding them all took twice the file)."""
    big = capture_lines(tmp_path / "big.jsonl", 1600)
    size = big.stat().st_size
    one = capture_lines(tmp_path / "one.jsonl", 1)
    alone = peak_rss("convert", one, "--to", to, "--out", tmp_path / "out" / f"one.{to}")
    assert peak_rss("convert", big, "--to", to, "--out", tmp_path / "out" / f"big.{to}") - alone < size / 5
    assert len(analyzer.load(tmp_path / "out" / f"big.{to}", progress=False)) == 1600


def test_cli_convert_refuses_to_write_over_one_of_its_inputs(tmp_path: Path) -> None:
    """Read as it is written, an input would be emptied first: refused, and left as it was."""
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes((captures_as_cloned() / "tool_calls.jsonl").read_bytes())
    before = capture.read_bytes()
    result = _cli("convert", str(tmp_path), "--to", "jsonl", "--out", str(capture))
    assert result.returncode == 1 and "is one of the inputs" in result.stderr
    assert capture.read_bytes() == before


@pytest.mark.parametrize("count", [0, 1, 43])
def test_har_written_an_entry_at_a_time_is_the_whole_document_byte_for_byte(count: int, tmp_path: Path) -> None:
    exchanges = list(analyzer.load(captures_as_cloned(), progress=False))[:count]
    written = har.har(iter(exchanges), tmp_path / "x.har").read_bytes()
    log = {"version": "1.2", "creator": {"name": "chatcap", "version": analyzer.__version__}, "pages": [],
           "entries": [har.entry(exchange) for exchange in exchanges]}  # fmt: skip
    assert written == dumps_exact({"log": log}, indent=True).encode()
