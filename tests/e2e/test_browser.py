"""A real browser through the proxy, `chatcap capture --browser`, and HTTPS upstreams."""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest
from harness import ROOT, Proxy, Upstream, free_port, scripted_stream, self_signed, start_upstream

from analyzer.capture import browser_flags, find_browser

pytestmark = pytest.mark.e2e
PAGES = Path(__file__).resolve().parent / "pages"
BROWSER_KEY = "sk-browserSECRETabcdefghijklmnop"


def chromium() -> str:
    try:
        return find_browser()
    except Exception as exc:
        pytest.fail(f"the browser tests need Chromium (make test installs Debian's chromium): {exc}")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(PAGES)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_headless_chromium_chat_page_is_captured_as_it_streams(upstream: Upstream, proxy: Proxy, pages: str) -> None:
    from playwright.sync_api import sync_playwright

    upstream.server.allowed_origins = frozenset({pages})  # as `chatcap replay --cors` would

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=browser_flags(proxy.port, None)
        )
        try:
            page = browser.new_page()
            page.goto(f"{pages}/chat.html")
            result = page.evaluate("([upstream]) => ask(upstream, 'hi')", [upstream.url])
            shown = page.text_content("#answer")
        finally:
            browser.close()
    upstream_done_ms = upstream.exchange.response.chunks[-1][0]
    assert result["times"][0] < upstream_done_ms / 2  # tokens rendered live, not after the stream ended
    assert shown == result["text"] == "".join(f"w{n} " for n in range(20))

    deadline = time.monotonic() + 10
    while not (captured := proxy.captured()) and time.monotonic() < deadline:
        time.sleep(0.1)
    (exchange,) = captured  # the page load itself is not an LLM call: not recorded
    assert exchange.reconstruct().choices[0].content == shown
    assert exchange.request.header("origin") == pages
    assert BROWSER_KEY not in (proxy.out / next(proxy.out.glob("*.jsonl")).name).read_text()


@pytest.mark.slow
def test_chatcap_capture_browser_records_a_chat_page(tmp_path: Path, upstream: Upstream, pages: str) -> None:
    upstream.server.allowed_origins = frozenset({pages})  # as `chatcap replay --cors` would
    port = free_port()
    out = tmp_path / "live"
    env = {**os.environ, "HOME": str(tmp_path)}  # mitmproxy's CA is made under this HOME, not the user's
    env.pop("DISPLAY", None)
    command = [sys.executable, "-m", "analyzer", "capture", "--port", str(port), "--out", str(out), "--browser",
               "--url", f"{pages}/chat.html?upstream={upstream.url}"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(f.stat().st_size for f in out.glob("*.jsonl")):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=45)
    finally:
        if process.poll() is None:  # let it stop its proxy and browser (their own sessions) before a kill
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    assert process.returncode == 0, stderr
    assert f"capturing on http://127.0.0.1:{port}" in stdout and "NODE_EXTRA_CA_CERTS" in stdout
    assert "captured 1 exchange(s)" in stdout
    summary = subprocess.run(
        [sys.executable, "-m", "analyzer", "summary", str(out)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "250"},  # a row on one line, whatever the test runner's terminal is
    )  # fmt: skip
    assert "gpt-e2e" in summary.stdout and "7→20" in summary.stdout and " ms " in summary.stdout
    profile = re.search(r"\(profile (\S+),", stdout)
    assert profile and not Path(profile.group(1)).exists()  # the throw-away profile is gone


def test_openai_sdk_over_https_through_the_proxy(tmp_path: Path, proxy: Proxy) -> None:
    exchange = scripted_stream(["secure ", "stream"], gap_ms=30)
    server = start_upstream([exchange], self_signed(tmp_path))
    try:
        ca = tmp_path / "mitmproxy-conf" / "mitmproxy-ca-cert.pem"
        client = openai.OpenAI(
            base_url=f"{server.url}/v1",
            api_key="sk-x",
            http_client=httpx.Client(proxy=proxy.url, verify=ssl.create_default_context(cafile=str(ca))),
        )
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="gpt-e2e", messages=[], stream=True)
            if c.choices
        )
    finally:
        server.shutdown()
        server.server_close()
    assert text == "secure stream"
    deadline = time.monotonic() + 10
    while not (captured := proxy.captured()) and time.monotonic() < deadline:
        time.sleep(0.1)
    (recorded,) = captured
    assert recorded.request.url.startswith("https://127.0.0.1:")
    assert recorded.reconstruct().choices[0].content == "secure stream"


def test_curl_is_available() -> None:
    assert shutil.which("curl"), "the capture tests drive curl"
