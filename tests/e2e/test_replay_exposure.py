"""`chatcap replay` as a user runs it, asked by real HTTP clients on 127.0.0.1: a web page
of another origin can neither read a recording (no CORS header unless `--cors` names that
origin, and a request it sends is refused) nor reach one through DNS rebinding (a Host
that is not loopback is refused); a request no recording answers gets a 404 JSON error,
not someone else's recording; what a client asks for as recorded still comes back byte
for byte; and listening beyond loopback is said out loud.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from harness import free_port

import analyzer
from analyzer.capture import wait_for_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "captures" / "replayed" / "conversation.jsonl"
PAGE = "https://chat.example"  # some web page's origin
PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}
FRONTEND = "http://localhost:3000"  # the user's own chat front end, named with --cors


@dataclass
class Replay:
    process: subprocess.Popen[str]
    url: str


@contextmanager
def replay(*options: str) -> Iterator[Replay]:
    """`chatcap replay` of the conversation capture at full speed, stopped (by its own id) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "analyzer", "replay", str(CAPTURE), "--port", str(port), "--speed", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, process)
        yield Replay(process, f"http://127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def recorded() -> analyzer.Exchange:
    return analyzer.load(CAPTURE)[0]


def ask(running: Replay, path: str = "/v1/chat/completions", **headers: str) -> httpx.Response:
    exchange = recorded()
    return httpx.post(running.url + path, content=exchange.request.body, headers=headers, timeout=10)


def test_a_recorded_request_gets_its_recording_byte_for_byte_without_cors_headers() -> None:
    with replay() as running:
        answer = ask(running, **{"content-type": "application/json"})
    assert answer.status_code == 200
    assert answer.content == recorded().response.body
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_a_page_of_another_origin_is_refused_and_given_no_cors_header() -> None:
    with replay() as running:
        preflight = httpx.options(
            running.url + "/v1/chat/completions",
            headers={"origin": PAGE, **PREFLIGHT},
        )
        post = ask(running, origin=PAGE)
        models = httpx.get(running.url + "/v1/models", headers={"origin": PAGE})
    for answer in (preflight, post, models):
        assert answer.status_code == 403
        assert "access-control-allow-origin" not in answer.headers
        error = answer.json()["error"]
        assert error["type"] == "origin_not_allowed" and PAGE in error["message"] and "--cors" in error["message"]
    assert recorded().response.body not in post.content


def test_an_origin_named_with_cors_is_allowed_and_only_that_origin() -> None:
    with replay("--cors", FRONTEND, "--cors", "http://127.0.0.1:5173") as running:
        preflight = httpx.options(
            running.url + "/v1/chat/completions",
            headers={"origin": FRONTEND, **PREFLIGHT},
        )
        post = ask(running, origin=FRONTEND)
        other = ask(running, origin=PAGE)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == FRONTEND
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    assert "origin" in preflight.headers["vary"].lower()
    assert post.status_code == 200 and post.headers["access-control-allow-origin"] == FRONTEND
    assert post.content == recorded().response.body
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_a_host_header_that_is_not_loopback_is_refused() -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 asks as
    its own origin, so only the Host header tells."""
    with replay() as running:
        port = running.url.rsplit(":", 1)[1]
        rebound = ask(running, host=f"evil.example:{port}")
        local = ask(running, host=f"localhost:{port}")
    assert rebound.status_code == 403 and rebound.json()["error"]["type"] == "host_not_allowed"
    assert recorded().response.body not in rebound.content
    assert local.status_code == 200 and local.content == recorded().response.body


def test_an_unmatched_request_gets_a_404_json_error_not_a_recording() -> None:
    bodies = [x.response.body for x in analyzer.load(CAPTURE)]
    with replay() as running:
        answers = [
            ask(running, "/v1/embeddings"),
            httpx.post(running.url + "/anything", content=b"{}", timeout=10),
            httpx.post(running.url + "/", content=b"not json", timeout=10),
        ]
    for answer in answers:
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/json"
        error = orjson.loads(answer.content)["error"]
        assert error["type"] == "not_found" and "/v1/chat/completions" in error["message"]
        assert not any(body in answer.content for body in bodies)


def test_listening_beyond_loopback_is_said_on_stderr() -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes, then the bind fails.
    port = str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", "replay", str(CAPTURE), "--host", "192.0.2.1", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    warning, error = result.stderr.splitlines()
    assert warning.startswith("warning: listening on 192.0.2.1") and "not loopback" in warning
    assert error.startswith("Error: cannot listen on 192.0.2.1") and result.returncode == 1


def test_cors_takes_origins_not_a_wildcard() -> None:
    for value in ("*", "null", "https://chat.example/path", "chat.example"):
        result = subprocess.run(
            [sys.executable, "-m", "analyzer", "replay", str(CAPTURE), "--cors", value, "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and "Invalid value for '--cors'" in result.stderr, (value, result.stderr)
        assert "an origin" in result.stderr and "Traceback" not in result.stderr
