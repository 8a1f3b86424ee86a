"""mitmproxy flow files (written here with mitmproxy's own FlowWriter), HAR files too large to
parse whole, and the progress bar. Real mitmdump writing flow files: tests/e2e/test_producers.py."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import orjson
import pytest
from bundled import captures_as_cloned
from tqdm import tqdm

import analyzer
import analyzer.ingest
from analyzer.errors import LoadError

mitmproxy = pytest.importorskip("mitmproxy")
from mitmproxy.io import FlowWriter  # noqa: E402
from mitmproxy.test import tflow, tutils  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONVERSATION = ROOT / "captures" / "replayed" / "conversation.jsonl"


def _llm_flow(exchange: analyzer.Exchange, *, gzipped: bool = False) -> object:
    """A flow holding `exchange` as mitmproxy would have recorded it (body not streamed)."""
    body = exchange.response.body
    headers = [(b"content-type", b"text/event-stream")]
    if gzipped:
        body, headers = gzip.compress(body), [*headers, (b"content-encoding", b"gzip")]
    request = tutils.treq(
        method=b"POST",
        path=b"/v1/chat/completions",
        headers=[(b"content-type", b"application/json")],
        content=exchange.request.body,
    )
    response = tutils.tresp(status_code=200, headers=headers, content=body)
    flow = tflow.tflow(req=request, resp=response)
    flow.request.timestamp_start, flow.request.timestamp_end = 1000.0, 1000.002
    flow.response.timestamp_start, flow.response.timestamp_end = 1000.352, 1001.250
    return flow


def _flow_file(*flows: object) -> bytes:
    out = io.BytesIO()
    writer = FlowWriter(out)
    for flow in flows:
        writer.add(flow)
    return out.getvalue()


@pytest.fixture(scope="module")
def replayed() -> analyzer.Exchanges:
    return analyzer.load(CONVERSATION)


def test_a_flow_file_is_sniffed_and_only_its_llm_calls_are_kept(replayed: analyzer.Exchanges) -> None:
    page = tflow.tflow(resp=True)  # GET /path: not an LLM call
    data = _flow_file(page, _llm_flow(replayed[0]), tflow.ttcpflow(), _llm_flow(replayed[1], gzipped=True))
    assert analyzer.ingest.sniff(data) == "mitmproxy-flows"
    loaded = analyzer.parse(data, "saved.mitm")
    assert [x.position for x in loaded] == ["flow 2", "flow 4"]
    assert [str(p) for p in loaded.problems] == [
        "saved.mitm: 2 of 4 flows left out (1 not an LLM API call, 1 not HTTP)"
    ]
    for got, want in zip(loaded, replayed[:2], strict=True):
        assert got.format == "mitmproxy-flows" and got.response.body == want.response.body  # gzip undone
        assert got.reconstruct().to_openai()["choices"] == want.reconstruct().to_openai()["choices"]
        assert analyzer.ingest.sniff(got.raw) == "mitmproxy-flows"  # raw: the flow itself


def test_flow_timing_comes_from_its_timestamps(replayed: analyzer.Exchanges) -> None:
    (exchange,) = analyzer.parse(_flow_file(_llm_flow(replayed[0])))
    assert exchange.timings == {"send": 2.0, "wait": 350.0, "receive": 898.0}
    timing = exchange.reconstruct().timing
    assert (timing.source, timing.resolution_ms, timing.ttfb_ms, timing.duration_ms) == (
        "mitmproxy",
        1.0,
        350.0,
        1250.0,
    )
    assert timing.ttft_ms is None  # no per-read times in a flow
    assert timing.decode_tokens_per_s == pytest.approx(replayed[0].reconstruct().usage.completion_tokens / 0.898)


def test_a_damaged_flow_file_keeps_what_came_before_the_damage(replayed: analyzer.Exchanges) -> None:
    good = _flow_file(_llm_flow(replayed[0]))
    loaded = analyzer.parse(good + good[:-40])
    assert len(loaded) == 1
    assert "damaged after 1 LLM call(s)" in str(loaded.problems[-1])


def test_a_flow_file_without_mitmproxy_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, replayed: analyzer.Exchanges
) -> None:
    monkeypatch.setitem(sys.modules, "mitmproxy.io", None)
    with pytest.raises(LoadError, match=r"mitmproxy flow file: reading it needs mitmproxy \(pip install"):
        analyzer.parse(_flow_file(_llm_flow(replayed[0])), "x.mitm")


def test_large_har_files_are_read_entry_by_entry_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    har = tmp_path / "big.har"
    har.write_bytes((ROOT / "tests" / "data" / "ingest" / "browser_mixed.har").read_bytes())
    whole = analyzer.load(har)
    monkeypatch.setattr(analyzer.ingest, "STREAM_HAR_BYTES", 0)
    streamed = analyzer.load(har)
    assert [x.raw for x in streamed] == [x.raw for x in whole]
    assert [str(p) for p in streamed.problems] == [str(p) for p in whole.problems]
    assert [x.reconstruct().to_openai() for x in streamed] == [x.reconstruct().to_openai() for x in whole]


def test_a_large_har_cut_off_keeps_the_entries_before_the_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [orjson.loads(line) for line in CONVERSATION.read_bytes().splitlines()]
    data = orjson.dumps({"log": {"version": "1.2", "entries": entries}})
    cut = tmp_path / "cut.har"
    cut.write_bytes(data[: len(data) - 200])
    monkeypatch.setattr(analyzer.ingest, "STREAM_HAR_BYTES", 0)
    loaded = analyzer.load([cut])
    assert len(loaded) == len(entries) - 1
    assert "HAR file is damaged after" in str(loaded.problems[0])


def test_progress_bar_counts_bytes_across_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(analyzer.ingest, "PROGRESS_DELAY_S", 0)
    replayed = captures_as_cloned() / "replayed"  # a directory: the bundled recordings alone
    loaded = analyzer.load(replayed, progress=True)
    err = capsys.readouterr().err
    total = sum(p.stat().st_size for p in replayed.iterdir())
    assert loaded and "loading:" in err and f"/{tqdm.format_sizeof(total)} " in err  # bytes of every file


def test_no_progress_bar_off_a_terminal_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    analyzer.load(captures_as_cloned() / "replayed")
    assert capsys.readouterr().err == ""


def test_glob_patterns_load_every_match_and_say_when_none_matches() -> None:
    replayed = sorted((captures_as_cloned() / "replayed").glob("*.jsonl"))
    loaded = analyzer.load(str(captures_as_cloned() / "replayed" / "*.jsonl"))
    assert [x.source for x in loaded] == [str(p) for p in replayed for _ in analyzer.load(p)]
    assert len(analyzer.load(str(captures_as_cloned() / "**" / "*.jsonl"))) > len(loaded)
    with pytest.raises(LoadError, match="no file matches this pattern"):
        analyzer.load(str(ROOT / "nothing" / "*.har"))
