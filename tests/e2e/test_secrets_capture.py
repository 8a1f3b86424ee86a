"""Secrets planted in every place, through a real `chatcap capture`: the real proxy, a real
upstream on 127.0.0.1 that streams model output repeating every key in small writes, a real
client. None survives in the capture, in any export or converted file, in any file name or
on the terminal; the capture's JSON stays JSON and its reads' offsets still fit the body."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest
from harness import ROOT, free_port

import analyzer

sys.path.insert(0, str(ROOT / "tests"))
from secrets_plant import (
    HEADERS,
    QUERY_SECRET,
    SECRETS,
    STREAMS,
    USERINFO_PASSWORD,
    model_output,
    request_body,
    split,
)

pytestmark = pytest.mark.e2e

NOT_UTF8_KEY = "sk-proj-NotUtf8BodyQ4Lm8Tz2Pw6Rv9Nb3Yc7Hd1"


class _Upstream(BaseHTTPRequestHandler):
    """Streams each protocol's reply in 40-byte writes, so reads cut keys in pieces."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        protocol = next(name for name, (path, _) in STREAMS.items() if self.path.startswith(path.split("?")[0]))
        body = STREAMS[protocol][1](split(model_output(), 9))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("set-cookie", "sid=hdr-cookie-6; Path=/")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for n in range(0, len(body), 40):
            piece = body[n : n + 40]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
            time.sleep(0.002)
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def captured(tmp_path: Path, upstream: str) -> Path:
    """The capture directory after one exchange per protocol and one body that is not UTF-8."""
    port, out = free_port(), tmp_path / "live"
    env = {**os.environ, "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "analyzer", "capture", "--port", str(port), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.2)
        proxy = f"http://127.0.0.1:{port}"
        with httpx.Client(proxy=proxy, timeout=30) as client:
            for protocol, (path, _) in STREAMS.items():
                separator = "&" if "?" in path else "?"
                url = f"http://alice:{USERINFO_PASSWORD}@{upstream}{path}{separator}key={QUERY_SECRET}"
                reply = client.post(url, headers=HEADERS, json=request_body(protocol))
                assert reply.status_code == 200 and "Qm4Xr8Tz2Lp6Vn0Wb3Yc7Hd1" in reply.text  # the client got it all
            raw = b'{"model": "m", "messages": [{"role": "user", "content": "\xff ' + NOT_UTF8_KEY.encode() + b'"}]}'
            client.post(f"http://{upstream}/v1/chat/completions", content=raw,
                        headers={"content-type": "application/json"})  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(f.read_text().count("\n") for f in out.glob("*.jsonl")) < 5:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=45)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    assert "captured 5 exchange(s)" in stdout, stdout + stderr
    assert _leaks(stdout + stderr) == []
    return out


def _leaks(text: str) -> list[str]:
    unescaped = text.replace("\\n", "\n").replace('\\"', '"')
    return [secret for secret in [*SECRETS, NOT_UTF8_KEY] if secret in text or secret in unescaped]


def test_no_secret_is_recorded_and_the_record_stays_valid(captured: Path) -> None:
    [capture] = captured.glob("*.jsonl")
    text = capture.read_text()
    assert _leaks(text) == []
    for line in text.splitlines():
        entry = json.loads(line)
        body = entry["response"]["content"]["text"].encode()
        ends = [end for _, end in entry["response"]["_chunks"]]
        assert ends == sorted(ends) and ends[-1] == len(body)  # the reads' offsets moved with the edits
        if entry["request"]["postData"].get("encoding") != "base64":
            json.loads(entry["request"]["postData"]["text"])  # still JSON
    exchanges = analyzer.load(captured)
    replies = [x.reconstruct().choices[0].content for x in exchanges if x.reconstruct().choices]
    assert len(replies) >= 4 and all(reply.count("<redacted:") >= 15 for reply in replies[:4])


def test_no_secret_leaves_in_any_output_or_file_name(captured: Path, tmp_path: Path) -> None:
    outputs: list[Path] = []
    for fmt in ("markdown", "html", "jsonl", "csv", "parquet"):
        out = tmp_path / fmt
        subprocess.run([sys.executable, "-m", "analyzer", "export", str(captured), "--format", fmt, "--out", str(out)],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        outputs += [path for path in out.rglob("*") if path.is_file()]
    for to in ("har", "jsonl"):
        target = tmp_path / f"converted.{to}"
        subprocess.run([sys.executable, "-m", "analyzer", "convert", str(captured), "--to", to, "--out", str(target)],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        outputs.append(target)
    for path in outputs:
        assert _leaks(path.name) == []
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).to_csv()
        elif path.suffix == ".pickle":  # what a dataset keeps of each capture file for its next run
            text = path.read_bytes().decode("latin-1")
        else:
            text = path.read_text()
        assert _leaks(text) == [], path.name
    terminal = subprocess.run([sys.executable, "-m", "analyzer", "summary", str(captured)], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
    assert _leaks(terminal.stdout + terminal.stderr) == []
