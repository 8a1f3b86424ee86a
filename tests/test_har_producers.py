"""HAR files in the shapes Chrome DevTools, Firefox DevTools, Charles Proxy and HTTP Toolkit
export (tests/data/har/, written by tests/data/make_har_fixtures.py around the recordings in
captures/replayed/): every LLM call in them reconstructs to what chatcap's own capture of
the same exchange reconstructs to, and every other entry is left out and counted.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import analyzer

ROOT = Path(__file__).resolve().parent.parent
HAR = ROOT / "tests" / "data" / "har"
REPLAYED = ROOT / "captures" / "replayed"
SCRIPT = ROOT / "tests" / "data" / "make_har_fixtures.py"
_spec = importlib.util.spec_from_file_location("make_har_fixtures", SCRIPT)
assert _spec is not None and _spec.loader is not None
made = importlib.util.module_from_spec(_spec)
sys.modules["make_har_fixtures"] = made  # dataclasses look their module up by name
_spec.loader.exec_module(made)

# fixture: (who wrote that shape, entries in the file, of which LLM calls)
FIXTURES = {
    "chrome-devtools-shape.har": ("WebInspector", 9, 3),
    "firefox-devtools-shape.har": ("Firefox", 10, 3),
    "charles-shape.har": ("Charles Proxy", 9, 4),
    "httptoolkit-shape.har": ("HTTP Toolkit", 9, 3),
}
CALLS = [
    pytest.param(
        name, n, call, id=f"{name.removesuffix('-shape.har')}-{call.capture.removesuffix('.jsonl')}{call.line}"
    )
    for name, calls in made.LLM_CALLS.items()
    for n, call in enumerate(calls)
]
KEPT = [param for param in CALLS if param.values[2].response == "body"]


@functools.cache
def load(name: str) -> analyzer.Exchanges:
    return analyzer.load(HAR / name)


@functools.cache
def captured(capture: str) -> analyzer.Exchanges:
    return analyzer.load(REPLAYED / capture)


def entries(name: str) -> list[dict[str, Any]]:
    return json.loads((HAR / name).read_bytes())["log"]["entries"]


def llm_entry(name: str, n: int) -> dict[str, Any]:
    """The n-th LLM call's entry as the file has it (they are the POSTs to chat/completions)."""
    calls = [
        e for e in entries(name) if e["request"]["method"] == "POST" and "/chat/completions" in e["request"]["url"]
    ]
    return calls[n]


# -- the files themselves ---------------------------------------------------------------------------


def test_fixtures_are_what_make_har_fixtures_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIXTURES)
    for name in FIXTURES:
        assert (tmp_path / name).read_bytes() == (HAR / name).read_bytes(), f"{name}: run make_har_fixtures.py"


def test_fixtures_stay_small() -> None:
    assert sum((HAR / name).stat().st_size for name in FIXTURES) < 200_000


@pytest.mark.parametrize("name", FIXTURES)
def test_each_file_names_its_producer_and_is_a_har_file(name: str) -> None:
    creator, total, _ = FIXTURES[name]
    data = (HAR / name).read_bytes()
    assert analyzer.ingest.sniff(data) == "json"
    log = json.loads(data)["log"]
    assert (log["version"], log["creator"]["name"], len(log["entries"])) == ("1.2", creator, total)


# -- which entries are LLM calls --------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_non_llm_entries_are_left_out_and_counted(name: str) -> None:
    _, total, llm = FIXTURES[name]
    exchanges = load(name)
    assert [p.reason for p in exchanges.problems] == [
        f"{total - llm} of {total} entries are not LLM API calls: left out"
    ]
    assert len(exchanges) == llm == len(made.LLM_CALLS[name])
    assert all(x.format == "har" for x in exchanges)
    assert [x.request.url for x in exchanges] == [llm_entry(name, n)["request"]["url"] for n in range(llm)]


# -- each LLM call against the proxy's capture of the same exchange ---------------------------------


@pytest.mark.parametrize(("name", "n", "call"), KEPT)
def test_llm_call_reconstructs_as_the_proxy_captured_it(name: str, n: int, call: Any) -> None:
    exchange = load(name)[n]
    capture = captured(call.capture)[call.line - 1]
    rec, expected = exchange.reconstruct(), capture.reconstruct()
    assert rec.to_openai()["choices"] == expected.to_openai()["choices"]
    assert rec.to_openai()["usage"] == expected.to_openai()["usage"]
    assert rec.to_openai() == expected.to_openai()
    assert rec.error == expected.error
    assert [w.code for w in rec.warnings] == [w.code for w in expected.warnings]
    assert exchange.response.status == capture.response.status
    assert exchange.response.body == capture.response.body
    assert exchange.started_at == capture.started_at  # the same instant, whatever offset the producer wrote
    if call.request == "text":  # a params-only request: test_charles_json_sent_as_a_form_keeps_its_request_body
        assert exchange.request.json() == capture.request.json()


@pytest.mark.parametrize(("name", "n", "call"), CALLS)
def test_timing_comes_from_the_har_timings(name: str, n: int, call: Any) -> None:
    timings = llm_entry(name, n)["timings"]
    timing = load(name)[n].reconstruct().timing
    assert (timing.source, timing.resolution_ms) == ("har", 1.0)
    assert timing.ttfb_ms == timings["wait"]
    assert timing.duration_ms == pytest.approx(max(timings["send"], 0) + timings["wait"] + timings["receive"])


def test_chrome_body_no_longer_in_devtools_buffer_is_flagged_not_an_empty_answer() -> None:
    name = "chrome-devtools-shape.har"
    (n,) = [n for n, call in enumerate(made.LLM_CALLS[name]) if call.response == "dropped"]
    entry = llm_entry(name, n)
    assert "text" not in entry["response"]["content"] and entry["response"]["content"]["size"] > 0
    exchange = load(name)[n]
    rec = exchange.reconstruct()
    assert "body_not_recorded" in [w.code for w in exchange.warnings]
    assert rec.has("body_not_recorded")
    assert rec.choices == [] and rec.to_openai()["choices"] == []
    assert rec.usage is None
    assert exchange.request.json() == captured("conversation.jsonl")[1].request.json()  # the request was kept


def test_chrome_decoded_body_under_its_content_encoding_header_is_not_decoded_again() -> None:
    exchange = load("chrome-devtools-shape.har")[2]
    assert exchange.response.header("content-encoding") == "gzip"
    assert not exchange.warnings
    assert exchange.response.body == captured("gzip_stream.jsonl")[0].response.body


def test_charles_json_body_written_base64_is_read() -> None:
    entry = llm_entry("charles-shape.har", 2)
    assert entry["response"]["content"]["encoding"] == "base64"
    rec = load("charles-shape.har")[2].reconstruct()
    assert rec.error == captured("rate_limited.jsonl")[0].reconstruct().error
    assert rec.error is not None


def test_charles_json_sent_as_a_form_keeps_its_request_body() -> None:
    """curl -d labels JSON application/x-www-form-urlencoded; Charles then writes only
    postData.params, the whole JSON as one parameter name with an empty value."""
    entry = llm_entry("charles-shape.har", 0)
    assert "text" not in entry["request"]["postData"]
    exchange = load("charles-shape.har")[0]
    expected = captured("conversation.jsonl")[2]
    assert exchange.request.json() == expected.request.json()
    assert exchange.requested_model() == expected.requested_model()


def test_httptoolkit_client_abort_keeps_no_response_and_says_so() -> None:
    name = "httptoolkit-shape.har"
    (n,) = [n for n, call in enumerate(made.LLM_CALLS[name]) if call.response == "aborted"]
    assert llm_entry(name, n)["response"]["status"] == 0
    exchange = load(name)[n]
    rec = exchange.reconstruct()
    assert exchange.response.status is None and exchange.response.body == b""
    assert rec.choices == [] and rec.truncated
    assert rec.has("empty_body") and not rec.has("body_not_recorded")
    assert exchange.request.json() == captured("client_abort.jsonl")[0].request.json()
