"""Non-ASCII text served as `text/event-stream` without a charset, recorded by real producers:
mitmdump's `hardump` and Playwright's `record_har_path` (headless Chromium). Both store the
body as text decoded from Latin-1 / windows-1252, so 世界 arrives as ä¸–ç•Œ; chatcap undoes
that decode exactly (the SSE spec says a stream is UTF-8) and says it did."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from harness import Proxy, Upstream, scripted_stream, start_proxy, start_upstream
from test_browser import chromium, pages  # noqa: F401 - `pages` is a fixture

import analyzer
from analyzer.capture import browser_flags

pytestmark = pytest.mark.e2e
# Characters windows-1252 maps (€ “ ” —), Latin-1 letters, CJK, an emoji, and a byte 0x81/0x8D
# inside the UTF-8 of 큍 (U+D08D: EB 82 8D) and Ł (C5 81) that windows-1252 leaves undefined.
WORDS = ["世界 ", "café ", "naïve ", "€5 ", "“quoted” ", "— ", "🙂 ", "큍 ", "Łódź "]
TEXT = "".join(WORDS)


@pytest.fixture
def upstream_non_ascii() -> Iterator[Upstream]:
    exchange = scripted_stream(WORDS, gap_ms=20)
    assert exchange.response is not None and exchange.response.headers == [("content-type", "text/event-stream")]
    server = start_upstream([exchange])
    yield Upstream(server, exchange)
    server.shutdown()
    server.server_close()


def _repaired(path: Path) -> analyzer.Exchange:
    exchanges = analyzer.load(path)
    (exchange,) = exchanges
    rec = exchange.reconstruct()
    assert rec.choices[0].content == TEXT
    notices = [w.message for w in rec.warnings if w.code == "mojibake_repaired"]
    assert len(notices) == 1 and "response body" in notices[0], rec.warnings
    return exchange


def _captured(proxy: Proxy) -> analyzer.Exchanges:
    deadline = time.monotonic() + 10
    while not (captured := proxy.captured()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return captured


def test_mitmdump_hardump_of_a_stream_without_charset_is_repaired(tmp_path: Path, upstream_non_ascii: Upstream) -> None:
    har = tmp_path / "mitmdump.har"
    proxy = start_proxy(tmp_path, "--set", f"hardump={har}")
    try:
        client = openai.OpenAI(base_url=f"{upstream_non_ascii.url}/v1", api_key="sk-test",
                               http_client=httpx.Client(proxy=proxy.url))  # fmt: skip
        stream = client.chat.completions.create(
            model="gpt-e2e", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == TEXT
        (captured,) = _captured(proxy)
    finally:
        proxy.stop()  # hardump is written when mitmdump exits
    assert captured.reconstruct().choices[0].content == TEXT  # chatcap's own record is UTF-8
    assert "ä¸–ç•Œ" in har.read_text(encoding="utf-8") or "\\u00e4\\u00b8" in har.read_text(encoding="utf-8")
    _repaired(har)


def test_playwright_record_har_of_a_stream_without_charset_is_repaired(
    tmp_path: Path,
    upstream_non_ascii: Upstream,
    pages: str,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import sync_playwright

    upstream_non_ascii.server.allowed_origins = frozenset({pages})  # as `chatcap replay --cors` would
    har = tmp_path / "playwright.har"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(),
            headless=True,
            args=[f for f in browser_flags(0, None) if not f.startswith("--proxy")],
        )
        try:
            context = browser.new_context(record_har_path=str(har))
            page = context.new_page()
            page.goto(f"{pages}/chat.html")
            assert page.evaluate("([upstream]) => ask(upstream, 'hi')", [upstream_non_ascii.url])["text"] == TEXT
            context.close()  # the HAR is written here
        finally:
            browser.close()
    text = har.read_text(encoding="utf-8")
    assert "ä¸–ç•Œ" in text or "\\u00e4\\u00b8" in text  # what Chromium wrote: the bytes read as windows-1252
    _repaired(har)
