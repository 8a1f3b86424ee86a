"""Live capture through a real mitmdump with the addon: real clients, real upstream, real faults."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from harness import Proxy, Upstream, scripted_stream, start_proxy, start_upstream

from analyzer.model import Exchange, Request, Response

pytestmark = pytest.mark.e2e

KEY = "sk-proj-e2eSECRETabcdefghijklmnopqrstu"
# Recorded inter-chunk gaps must match the upstream's schedule this closely (a loaded
# 2-core CI machine delays a read now and then by a few ms; 30 ms is comfortably more).
TOLERANCE_MS = 30.0


def wait_for_lines(proxy: Proxy, count: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for f in proxy.out.glob("*.jsonl") for line in f.read_text(encoding="utf-8").splitlines()]
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise TimeoutError(f"{count} exchange(s) not recorded within {timeout} s")


def event_gaps(exchange: Exchange) -> list[float]:
    times = [chunk.t_ms for chunk in exchange.reconstruct().chunks]
    return [b - a for a, b in itertools.pairwise(times)]


def test_openai_sdk_through_the_proxy_is_recorded_exactly(upstream: Upstream, proxy: Proxy) -> None:
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key=KEY, http_client=httpx.Client(proxy=proxy.url))
    received, arrivals = [], []
    for chunk in client.chat.completions.create(
        model="gpt-e2e",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
            received.append(chunk.choices[0].delta.content)
    sent = upstream.exchange.response.chunks
    upstream_span_s = (sent[-1][0] - sent[0][0]) / 1000

    # No buffering: the tokens reached the client spread out as the upstream sent them, not
    # all at once at the end (the client's own start-up cost, which load stretches, is left out).
    assert arrivals[-1] - arrivals[0] > upstream_span_s / 2

    wait_for_lines(proxy, 1)
    (exchange,) = proxy.captured()
    rec = exchange.reconstruct()
    assert rec.choices[0].content == "".join(received) == "".join(f"w{n} " for n in range(20))
    assert rec.usage.completion_tokens == 20 and rec.done and not rec.truncated
    assert exchange.request.json()["messages"] == [{"role": "user", "content": "count"}]
    assert rec.timing.source == "chunks" and rec.timing.ttft_ms is not None

    # Recorded per-read times follow the upstream's schedule (40 ms between events).
    scheduled = [b[0] - a[0] for a, b in itertools.pairwise(upstream.exchange.response.chunks)]
    recorded = event_gaps(exchange)
    assert len(recorded) == len(scheduled) - 1  # [DONE] is not a chunk
    assert max(abs(r - s) for r, s in zip(recorded, scheduled, strict=False)) <= TOLERANCE_MS

    # The API key never reaches the file.
    text = "".join(f.read_text() for f in proxy.out.glob("*.jsonl"))
    assert KEY not in text and "<redacted:" in text
    assert (proxy.out.glob("*.jsonl").__next__().stat().st_mode & 0o777) == 0o600


def test_curl_streams_through_and_is_recorded(upstream: Upstream, proxy: Proxy) -> None:
    body = json.dumps({"model": "gpt-e2e", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    curl = subprocess.Popen(
        [
            "curl",
            "-sN",
            "-x",
            proxy.url,
            f"{upstream.url}/v1/chat/completions",
            "-H",
            "content-type: application/json",
            "-d",
            body,
        ],
        stdout=subprocess.PIPE,
    )
    started = time.perf_counter()
    first_line = curl.stdout.readline()
    first_s = time.perf_counter() - started
    rest = curl.stdout.read()
    curl.wait(timeout=30)
    assert first_line.startswith(b"data: ") and first_s < 0.6
    wait_for_lines(proxy, 1)
    (exchange,) = proxy.captured()
    assert exchange.response.body == first_line + rest
    assert exchange.reconstruct().choices[0].finish_reason == "stop"


def test_gzip_compressed_stream_is_recorded_decoded(tmp_path: Path, proxy: Proxy) -> None:
    exchange = scripted_stream(["compressed ", "and ", "streamed"], gap_ms=30)
    exchange.response.headers.append(("content-encoding", "gzip"))
    server = start_upstream([exchange])
    try:
        result = subprocess.run(
            ["curl", "-sN", "--compressed", "-x", proxy.url, f"{server.url}/v1/chat/completions", "-d", "{}"],
            capture_output=True, timeout=30, check=True,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert result.stdout == exchange.response.body  # the client got the stream, decompressed by curl
    entry = wait_for_lines(proxy, 1)[0]
    assert {"name": "content-encoding", "value": "gzip"} in entry["response"]["headers"]
    (captured,) = proxy.captured()
    assert captured.response.body == exchange.response.body
    assert captured.reconstruct().choices[0].content == "compressed and streamed"


def test_client_disconnect_mid_stream_is_recorded_as_aborted(upstream: Upstream, proxy: Proxy) -> None:
    with (
        httpx.Client(proxy=proxy.url) as client,
        client.stream(
            "POST", f"{upstream.url}/v1/chat/completions", json={"model": "gpt-e2e", "messages": [], "stream": True}
        ) as response,
    ):
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]  # three events and their blank lines, then hang up
    assert got[0].startswith("data: ")
    entry = wait_for_lines(proxy, 1)[0]
    assert entry["_chatcap"]["complete"] is False and entry["_error"]
    (exchange,) = proxy.captured()
    rec = exchange.reconstruct()
    assert rec.truncated and rec.has("capture_error")
    assert rec.choices[0].content.startswith("w0 w1 w2 ")


class ResettingUpstream:
    """Sends the response head and two events, then resets the connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.recv(65536)
        events = b"".join(
            b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % word for word in (b"half ", b"an ")
        )
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        conn.sendall(b"%x\r\n%s\r\n" % (len(events), events))
        time.sleep(0.3)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # RST


def test_upstream_reset_mid_stream_is_recorded_as_far_as_it_got(proxy: Proxy) -> None:
    upstream = ResettingUpstream()
    url = f"http://127.0.0.1:{upstream.port}/v1/chat/completions"
    with (
        pytest.raises(httpx.HTTPError),
        httpx.Client(proxy=proxy.url) as client,
        client.stream("POST", url, json={"model": "m"}) as response,
    ):
        for _ in response.iter_bytes():
            pass
    entry = wait_for_lines(proxy, 1)[0]
    assert entry["_chatcap"]["complete"] is False and entry["_error"]
    rec = proxy.captured()[0].reconstruct()
    assert rec.choices[0].content == "half an " and rec.truncated


def _stream_in_background(
    url: str, proxy_url: str, results: list[str], started: threading.Semaphore | None = None
) -> threading.Thread:
    def run() -> None:
        try:
            with (
                httpx.Client(proxy=proxy_url, timeout=30) as client,
                client.stream(
                    "POST", f"{url}/v1/chat/completions", json={"model": "slow", "messages": [], "stream": True}
                ) as response,
            ):
                for n, _ in enumerate(response.iter_bytes()):
                    if n == 0 and started is not None:
                        started.release()  # the stream is flowing through the proxy
            results.append("finished")
        except httpx.HTTPError:
            results.append("cut")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_proxy_stopped_with_50_streams_in_flight(tmp_path: Path, sig: int) -> None:
    quick = scripted_stream(["done"], gap_ms=5, first_ms=5)
    slow = scripted_stream([f"s{n} " for n in range(60)], gap_ms=100, model="slow")
    slow.request.body = json.dumps({"model": "slow", "messages": []}).encode()
    server = start_upstream([slow, quick])
    proxy = start_proxy(tmp_path)
    try:
        # Three exchanges finish before the stop; fifty are mid-stream when it comes.
        for _ in range(3):
            httpx.post(
                f"{server.url}/v1/chat/completions", json={"model": "gpt-e2e", "messages": ["q"]}, proxy=proxy.url
            )
        results: list[str] = []
        started = threading.Semaphore(0)
        threads = [_stream_in_background(server.url, proxy.url, results, started) for _ in range(50)]
        # Stop once all fifty are mid-stream (a fixed wait left some unstarted on a loaded machine).
        for _ in range(50):
            assert started.acquire(timeout=20), "a stream did not start within 20 s"
        time.sleep(0.3)
        proxy.stop(sig)
        for thread in threads:
            thread.join(timeout=30)
    finally:
        proxy.stop(signal.SIGKILL)
        server.shutdown()
        server.server_close()
    exchanges = proxy.captured()
    assert not exchanges.problems  # no half-written line, whatever the signal
    finished = [x for x in exchanges if x.complete]
    aborted = [x for x in exchanges if not x.complete]
    assert len(finished) == 3
    if sig == signal.SIGTERM:
        assert len(aborted) == 50
        assert all(x.error for x in aborted)
        assert all(x.reconstruct().truncated for x in aborted)
    else:
        assert aborted == []  # in flight when killed: lost, and nothing else is


def test_secrets_are_redacted_unless_turned_off(tmp_path: Path, upstream: Upstream) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlMmUtdXNlciJ9.c2lnbmF0dXJlLWUyZS10ZXN0"
    for redacting in (True, False):
        proxy = start_proxy(tmp_path / str(redacting), "--set", f"chatcap_redact={str(redacting).lower()}")
        try:
            httpx.post(
                f"{upstream.url}/v1/chat/completions?key=querysecret123",
                headers={"Authorization": f"Bearer {KEY}", "Cookie": "session=cookiesecret456"},
                json={"model": "gpt-e2e", "messages": [{"role": "user", "content": f"my token is {jwt}"}]},
                proxy=proxy.url,
            )
            wait_for_lines(proxy, 1)
        finally:
            proxy.stop()
        text = "".join(f.read_text() for f in proxy.out.glob("*.jsonl"))
        for secret in (KEY, "cookiesecret456", jwt, "querysecret123"):
            assert (secret in text) is not redacting, secret


def test_other_traffic_passes_untouched_and_unrecorded(upstream: Upstream, proxy: Proxy) -> None:
    models = httpx.get(f"{upstream.url}/v1/models", proxy=proxy.url)
    assert models.status_code == 200 and models.json()["object"] == "list"
    httpx.post(f"{upstream.url}/v1/chat/completions", json={"model": "gpt-e2e", "messages": []}, proxy=proxy.url)
    entries = wait_for_lines(proxy, 1)
    time.sleep(0.3)
    assert len(entries) == 1 and entries[0]["request"]["url"].endswith("/v1/chat/completions")


def test_replay_without_recorded_times_uses_a_synthetic_schedule() -> None:
    body = b"".join(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n' for _ in range(5))
    exchange = Exchange(id="t", source="t", format="sse-text", request=None,
                        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=body))  # fmt: skip
    server = start_upstream([exchange])
    try:
        started = time.perf_counter()
        with httpx.stream("POST", f"{server.url}/v1/chat/completions", json={}) as response:
            arrivals = [time.perf_counter() - started for _ in response.iter_lines()]
    finally:
        server.shutdown()
        server.server_close()
    assert 0.25 < arrivals[0] < 1.0  # a realistic time to first byte, not instant


def test_event_stream_with_choices_on_an_unknown_path_is_recorded_others_not(tmp_path: Path) -> None:
    chat = scripted_stream(["found ", "anyway"], gap_ms=10)
    chat.request.url = "http://upstream/api/generate"  # replay answers a path only with what was recorded there
    ticks = Exchange(id="t", source="t", format="sse-text", request=Request(method="POST", url="http://upstream/api/generate"),
                     response=Response(200, None, None, [("content-type", "text/event-stream")], b'data: {"tick": 1}\n\n'))  # fmt: skip
    server = start_upstream([chat, ticks])
    proxy = start_proxy(tmp_path)
    try:
        for _ in range(2):  # the least served recording of the path first: the chat stream, then the ticks
            httpx.post(f"{server.url}/api/generate", json={"prompt": "no messages here"}, proxy=proxy.url)
        entries = wait_for_lines(proxy, 1)
        time.sleep(0.5)
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()
    assert len(entries) == 1 and entries[0]["request"]["url"].endswith("/api/generate")
    assert proxy.captured()[0].reconstruct().choices[0].content == "found anyway"


def test_a_response_over_the_cap_still_reaches_the_client_and_the_record_says_so(
    tmp_path: Path, upstream: Upstream
) -> None:
    proxy = start_proxy(tmp_path, "--set", "chatcap_max_body=600")
    try:
        received = httpx.post(
            f"{upstream.url}/v1/chat/completions", json={"model": "gpt-e2e", "messages": []}, proxy=proxy.url
        )
        entry = wait_for_lines(proxy, 1)[0]
    finally:
        proxy.stop()
    assert received.content == upstream.exchange.response.body  # the client got every byte
    assert entry["response"]["content"]["size"] == 600 and "capped at 600" in entry["response"]["_truncated"]
    assert entry["_chatcap"]["complete"] is False
    rec = proxy.captured()[0].reconstruct()
    assert rec.truncated and rec.choices[0].content.startswith("w0 ")


def test_each_exchange_gets_one_line_in_the_proxy_log(upstream: Upstream, proxy: Proxy) -> None:
    httpx.post(f"{upstream.url}/v1/chat/completions", json={"model": "gpt-e2e", "messages": []}, proxy=proxy.url)
    wait_for_lines(proxy, 1)
    deadline = time.monotonic() + 5
    while "chatcap: " not in proxy.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    (line,) = [line for line in proxy.log.read_text().splitlines() if "chatcap: " in line]
    assert "127.0.0.1" in line and "gpt-e2e 200" in line and "TTFT" in line and "20 tokens" in line and ".jsonl" in line
