"""Files other tools write, recorded in this run by those tools: Playwright's `record_har_path`
(headless Chromium), mitmdump's `hardump` and `-w` flow files. Each must reconstruct to the
same messages as chatcap's own capture of the same exchange."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from harness import Proxy, Upstream, start_proxy
from test_browser import chromium, pages  # noqa: F401 - `pages` is a fixture

import analyzer
from analyzer.capture import browser_flags

pytestmark = pytest.mark.e2e
WORDS = "".join(f"w{n} " for n in range(20))


def _captured(proxy: Proxy) -> analyzer.Exchanges:
    deadline = time.monotonic() + 10
    while not (captured := proxy.captured()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return captured


def _same_answer(a: analyzer.Exchange, b: analyzer.Exchange) -> None:
    """The reconstructions agree on everything a chat client would show or bill."""
    ra, rb = a.reconstruct(), b.reconstruct()
    assert ra.to_openai()["choices"] == rb.to_openai()["choices"]
    assert ra.usage == rb.usage
    assert (ra.id, ra.served_model, ra.streamed, ra.done) == (rb.id, rb.served_model, rb.streamed, rb.done)
    assert a.request.json() == b.request.json()


def _ask_with_sdk(proxy: Proxy, upstream: Upstream) -> str:
    client = openai.OpenAI(
        base_url=f"{upstream.url}/v1",
        api_key="sk-producersSECRETabcdefghijkl",
        http_client=httpx.Client(proxy=proxy.url),
    )
    stream = client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}], stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_mitmdump_hardump_and_flow_file_hold_what_the_addon_captured(tmp_path: Path, upstream: Upstream) -> None:
    har, flows = tmp_path / "mitmdump.har", tmp_path / "flows.mitm"
    proxy = start_proxy(tmp_path, "--set", f"hardump={har}", "-w", str(flows))
    try:
        assert _ask_with_sdk(proxy, upstream) == WORDS
        (captured,) = _captured(proxy)
    finally:
        proxy.stop()  # hardump is written when mitmdump exits
    assert captured.reconstruct().choices[0].content == WORDS
    # The addon streams the response (mitmproxy then keeps no body) and hands its record
    # back at the end, so mitmproxy's own writers hold the whole body too.
    (from_har,) = analyzer.load(har)
    (from_flows,) = analyzer.load(flows)
    for other in (from_har, from_flows):
        assert not other.warnings
        _same_answer(captured, other)
    assert from_har.format == "har" and from_flows.format == "mitmproxy-flows"
    timings = {x.format: x.reconstruct().timing for x in (captured, from_har, from_flows)}
    assert timings["chatcap-jsonl"].source == "chunks" and timings["chatcap-jsonl"].gap_p50_ms is not None
    assert timings["har"].source == "har" and timings["mitmproxy-flows"].source == "mitmproxy"
    for timing in timings.values():
        # The upstream answers with headers at once, its first event at 120 ms, the last 21 × 40 ms later.
        assert timing.ttfb_ms < 100
        assert 900 < timing.duration_ms < 3000
        assert 10 < timing.decode_tokens_per_s < 40
    assert 100 < timings["chatcap-jsonl"].ttft_ms < 400  # only per-read times see the first token
    assert "sk-producersSECRET" not in captured.raw.decode()  # the addon redacts; mitmproxy's files do not


def test_a_flow_mitmproxy_streamed_without_chatcap_says_its_body_is_missing(tmp_path: Path, upstream: Upstream) -> None:
    flows = tmp_path / "streamed.mitm"
    proxy = start_proxy(tmp_path, "--set", "stream_large_bodies=1", "-w", str(flows), addon=False)
    try:
        assert _ask_with_sdk(proxy, upstream) == WORDS
    finally:
        proxy.stop()
    (exchange,) = analyzer.load(flows)
    rec = exchange.reconstruct()
    # stream_large_bodies=1 streams both ways: neither body is kept.
    assert [w.code for w in rec.warnings] == ["request_body_not_recorded", "body_not_recorded"]
    assert all("streamed" in w.message for w in rec.warnings)
    assert rec.choices == [] and exchange.response.status == 200  # no made-up empty answer
    assert exchange.request.url.endswith("/v1/chat/completions") and exchange.request.body is None


def test_playwright_record_har_from_headless_chromium(
    tmp_path: Path,
    upstream: Upstream,
    pages: str,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import sync_playwright

    upstream.server.allowed_origins = frozenset({pages})  # as `chatcap replay --cors` would

    har = tmp_path / "playwright.har"
    proxy = start_proxy(tmp_path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium(), headless=True, args=browser_flags(proxy.port, None)
            )
            try:
                context = browser.new_context(record_har_path=str(har))
                page = context.new_page()
                page.goto(f"{pages}/chat.html")
                assert page.evaluate("([upstream]) => ask(upstream, 'hi')", [upstream.url])["text"] == WORDS
                context.close()  # the HAR is written here
            finally:
                browser.close()
        (captured,) = _captured(proxy)
    finally:
        proxy.stop()
    loaded = analyzer.load(har)
    (from_har,) = loaded
    # The page itself and the CORS preflight are not LLM calls: left out, and said so.
    assert any("are not LLM API calls: left out" in str(problem) for problem in loaded.problems)
    _same_answer(captured, from_har)
    timing = from_har.reconstruct().timing
    assert timing.source == "har" and timing.ttfb_ms is not None and timing.duration_ms > 800


def test_playwright_replays_a_page_from_the_har_chatcap_writes(tmp_path: Path, upstream: Upstream, pages: str) -> None:  # noqa: F811
    """Playwright's HAR router is an independent HAR reader: the page gets its answer from
    `chatcap convert`'s file alone, the upstream server already gone."""
    from playwright.sync_api import sync_playwright

    upstream.server.allowed_origins = frozenset({pages})  # as `chatcap replay --cors` would

    proxy = start_proxy(tmp_path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium(), headless=True, args=browser_flags(proxy.port, None)
            )
            try:
                page = browser.new_page()
                page.goto(f"{pages}/chat.html")
                assert page.evaluate("([upstream]) => ask(upstream, 'hi')", [upstream.url])["text"] == WORDS
            finally:
                browser.close()
        captured = _captured(proxy)
    finally:
        proxy.stop()
    written = tmp_path / "converted.har"
    convert = subprocess.run(
        [sys.executable, "-m", "analyzer", "convert", str(proxy.out), "--to", "har", "--out", str(written)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert convert.returncode == 0, convert.stderr
    upstream.server.shutdown()
    upstream.server.server_close()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            context = browser.new_context()
            context.route_from_har(str(written), url="**/v1/chat/completions", not_found="abort")
            page = context.new_page()
            page.goto(f"{pages}/chat.html")
            answer = page.evaluate("([upstream]) => ask(upstream, 'hi')", [upstream.url])
        finally:
            browser.close()
    assert answer["text"] == WORDS == captured[0].reconstruct().choices[0].content
