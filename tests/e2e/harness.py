"""Real processes for the capture tests: the replay server as upstream, mitmdump with the addon.

Imported by the tests and their fixtures (conftest.py).

All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

import analyzer
from analyzer.capture import wait_for_port
from analyzer.model import Exchange, Request, Response
from analyzer.replay import ReplayServer, serve

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addons" / "chatcap.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scripted_stream(words: list[str], gap_ms: float, first_ms: float = 120.0, model: str = "gpt-e2e") -> Exchange:
    """A chat/completions stream whose reads are scheduled: first at `first_ms`, then every `gap_ms`."""
    events = []
    for n, word in enumerate(words):
        delta = {"role": "assistant", "content": word} if n == 0 else {"content": word}
        chunk = {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1_800_000_000, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    finish = {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1_800_000_000, "model": model,
              "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7 + len(words)}}  # fmt: skip
    events += [b"data: " + orjson.dumps(finish) + b"\n\n", b"data: [DONE]\n\n"]
    body, chunks, end = b"", [], 0
    for n, event in enumerate(events):
        body += event
        end += len(event)
        chunks.append((first_ms + n * gap_ms, end))
    request = Request(method="POST", url="http://upstream/v1/chat/completions", body=orjson.dumps({"model": model}))
    response = Response(
        status=200, reason="OK", headers=[("content-type", "text/event-stream")], body=body, chunks=chunks
    )
    return Exchange(id="scripted#1", source="<e2e>", format="chatcap-jsonl", request=request, response=response)


@dataclass
class Upstream:
    server: ReplayServer
    exchange: Exchange

    @property
    def url(self) -> str:
        return self.server.url


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1, for an HTTPS upstream."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "upstream.pem", directory / "upstream.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)


def start_upstream(exchanges: list[Exchange], certificate: tuple[str, str] | None = None) -> ReplayServer:
    server = serve(exchanges, "127.0.0.1", 0, 1.0, certificate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Proxy:
    process: subprocess.Popen[bytes]
    port: int
    out: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def captured(self) -> analyzer.Exchanges:
        files = sorted(self.out.glob("*.jsonl"))
        return analyzer.load(files) if files else analyzer.Exchanges()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_proxy(tmp_path: Path, *options: str, addon: bool = True) -> Proxy:
    """mitmdump on a free port, with chatcap's addon unless `addon` is False (plain mitmdump)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    out = tmp_path / "live"
    log = tmp_path / "mitmdump.log"
    confdir = tmp_path / "mitmproxy-conf"
    chatcap = ["-s", str(ADDON), "--set", f"chatcap_dir={out}"] if addon else []
    command = [
        str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", str(port), *chatcap,
        "--set", f"confdir={confdir}", "--set", "ssl_insecure=true", *options,
    ]  # fmt: skip
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    wait_for_port(port, process)
    return Proxy(process, port, out, log)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # fifty clients connect at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client or proxy that went away mid-answer is what these tests make happen


class HeldStreams:
    """A loopback upstream that answers every POST with a slow chat stream, but sends no byte
    of any answer until `release()`: `arrived` counts the requests waiting. Each stream's
    events carry its request's first message, so a capture line can be matched to it."""

    def __init__(self, events: int = 40, gap_s: float = 0.05) -> None:
        self.arrived = 0
        self.stagger_s = 0.0
        self._lock = threading.Lock()
        self._gate = threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with held._lock:
                    held.arrived += 1
                    place = held.arrived
                if not held._gate.wait(60):
                    return
                time.sleep(place * held.stagger_s)
                name = orjson.loads(body)["messages"][0]["content"]
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                try:
                    for n in range(events):
                        chunk = {"id": name, "object": "chat.completion.chunk", "model": "held",
                                 "choices": [{"index": 0, "delta": {"content": f"{n} "}, "finish_reason": None}]}  # fmt: skip
                        self.wfile.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                        self.wfile.flush()
                        time.sleep(gap_s)
                    self.wfile.write(b"data: [DONE]\n\n")
                except OSError:
                    pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def release(self, stagger_s: float = 0.0) -> None:
        """Let the answers go: the n-th request's first bytes `n * stagger_s` seconds from now."""
        self.stagger_s = stagger_s
        self._gate.set()

    def close(self) -> None:
        self._gate.set()
        self.server.shutdown()
        self.server.server_close()


class FixedBody:
    """A loopback upstream that answers every request with one fixed body under `headers`
    (a prebuilt compressed body, say), sent in 64 KiB writes with its Content-Length."""

    def __init__(self, body: bytes, headers: list[tuple[str, str]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(200)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                view = memoryview(body)
                for start in range(0, len(body), 65536):
                    self.wfile.write(view[start : start + 65536])

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
