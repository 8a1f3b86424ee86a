"""Serve recorded exchanges as an OpenAI-compatible endpoint, with their original timing.

Each request is answered with the recorded exchange whose request body matches it best
(same messages, else same path and model, else the next one in turn), streamed read by
read at the recorded arrival times (scaled by `speed`). Sources without per-read times
get a synthetic but realistic schedule. It is the test upstream for the capture tests
and a way to test a client offline.
"""

from __future__ import annotations

import itertools
import ssl
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from analyzer.model import Exchange

# Synthetic schedule for sources with no per-read times: time to first byte, then per event.
SYNTHETIC_TTFB_MS = 350.0
SYNTHETIC_EVENT_MS = 25.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


@dataclass(slots=True)
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    # (seconds after the request arrived, bytes to send)
    pieces: list[tuple[float, bytes]]


def schedule(exchange: Exchange) -> list[tuple[float, bytes]]:
    """The response body cut into the recorded reads, each with its time in seconds."""
    response = exchange.response
    body = response.body if response else b""
    if response is not None and response.chunks:
        pieces, start = [], 0
        for t_ms, end in response.chunks:
            if end > start:
                pieces.append((t_ms / 1000, body[start:end]))
                start = end
        if start < len(body):
            pieces.append((pieces[-1][0] if pieces else 0.0, body[start:]))
        return pieces
    # No arrival times: one event per piece, a realistic TTFB then a steady pace.
    wait = (exchange.timings or {}).get("wait")
    first = (wait if wait and wait > 0 else SYNTHETIC_TTFB_MS) / 1000
    events = [piece for piece in body.split(b"\n\n") if piece]
    if len(events) <= 1 or not body.endswith(b"\n\n"):
        return [(first, body)]
    return [(first + n * SYNTHETIC_EVENT_MS / 1000, event + b"\n\n") for n, event in enumerate(events)]


def reply_for(exchange: Exchange) -> Reply:
    response = exchange.response
    headers = [(k, v) for k, v in (response.headers if response else []) if k.lower() not in _HOP_BY_HOP]
    return Reply(
        status=(response.status if response and response.status else 200),
        reason=(response.reason if response and response.reason else "OK"),
        headers=headers or [("content-type", "text/event-stream")],
        pieces=schedule(exchange),
    )


class Matcher:
    """Picks the recorded exchange that answers a request: the same history (`messages`,
    Gemini's `contents` or the Responses API's `input`; the least served of those, so a
    regenerated reply is replayed as the second answer), else the same path and model, else
    the least served on the same path (Gemini names the model only in the path), else the
    next one in turn."""

    def __init__(self, exchanges: Sequence[Exchange]) -> None:
        self.exchanges = [x for x in exchanges if x.response is not None]
        if not self.exchanges:
            raise ValueError("nothing to replay: no exchange has a response")
        self._served = [0] * len(self.exchanges)
        self._requests = [_json(x.request.body) if x.request else None for x in self.exchanges]
        self._turn = itertools.cycle(range(len(self.exchanges)))
        self._lock = threading.Lock()

    def match(self, path: str, body: bytes) -> Exchange:
        wanted = _json(body)
        wanted = wanted if isinstance(wanted, dict) else {}
        path = path.split("?", 1)[0]
        same_path = [n for n, x in enumerate(self.exchanges) if _path(x) in (path, None)]
        with self._lock:
            for key in ("messages", "contents", "input", "model"):
                if key not in wanted:
                    continue
                found = [
                    n
                    for n in same_path
                    if isinstance(self._requests[n], dict) and self._requests[n].get(key) == wanted[key]
                ]
                if found:
                    return self._serve(min(found, key=lambda n: (self._served[n], n)))
            on_path = [n for n in same_path if _path(self.exchanges[n]) == path]
            if on_path:
                return self._serve(min(on_path, key=lambda n: (self._served[n], n)))
            return self._serve(next(self._turn))

    def _serve(self, n: int) -> Exchange:
        self._served[n] += 1
        return self.exchanges[n]


def _json(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _path(exchange: Exchange) -> str | None:
    url = exchange.request.url if exchange.request else None
    return urlsplit(url).path if url else None


def _encoder(headers: list[tuple[str, str]]) -> Any:
    """Re-apply a recorded Content-Encoding so the client sees what it saw (streamed, flushed per read)."""
    encoding = next((v.strip().lower() for k, v in headers if k.lower() == "content-encoding"), "")
    if encoding in ("gzip", "x-gzip"):
        return zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.compressobj()
    return None


class ReplayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients connect at once in the load tests

    def __init__(self, address: tuple[str, int], exchanges: Sequence[Exchange], speed: float = 1.0) -> None:
        self.matcher = Matcher(exchanges)
        self.speed = speed
        self.served = 0
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        host, port = self.server_address[:2]
        return f"{scheme}://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # send each read when it is due, not bunched by Nagle
    server: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        # Browser chat pages on another local origin may call the replay server.
        self.send_header("access-control-allow-origin", "*")
        super().end_headers()

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("access-control-allow-methods", "GET, POST, OPTIONS")
        self.send_header("access-control-allow-headers", self.headers.get("access-control-request-headers", "*"))
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            models = sorted({x.requested_model() or "replay" for x in self.server.matcher.exchanges})
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "chatcap-replay"} for m in models],
                },
            )
        else:
            self._json(404, {"error": {"message": f"no recorded GET {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        arrived = time.perf_counter()
        reply = reply_for(self.server.matcher.match(self.path, body))
        self.server.served += 1
        encoder = _encoder(reply.headers)
        try:
            self.send_response(reply.status, reply.reason)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for data in _paced(reply.pieces, arrived, self.server.speed):
                if encoder is not None:
                    data = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
            if encoder is not None:
                tail = encoder.flush()
                if tail:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-stream: nothing to do

    def _json(self, status: int, obj: Any) -> None:
        data = orjson.dumps(obj)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _paced(pieces: list[tuple[float, bytes]], start: float, speed: float) -> Iterator[bytes]:
    for at, data in pieces:
        delay = start + at / speed - time.perf_counter() if speed > 0 else 0
        if delay > 0:
            time.sleep(delay)
        yield data


def serve(
    exchanges: Sequence[Exchange],
    host: str = "127.0.0.1",
    port: int = 8000,
    speed: float = 1.0,
    certificate: tuple[str, str] | None = None,
) -> ReplayServer:
    """A replay server bound to host:port (port 0 picks one); call `serve_forever()` on it.
    `certificate` = (certfile, keyfile) serves HTTPS."""
    server = ReplayServer((host, port), exchanges, speed)
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
