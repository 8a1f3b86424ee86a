"""Serve recorded exchanges as an OpenAI-compatible endpoint, with their original timing.

Each request is answered with the recorded exchange whose request body matches it best
(same messages, else same path and model, else the least served on the same path, else
one recorded without a request line), streamed read by read at the recorded arrival times
(scaled by `speed`). Sources without per-read times get a synthetic but realistic
schedule. A request no recording answers gets a 404 JSON error. It is the test upstream
for the capture tests and a way to test a client offline.

The recordings are someone's conversations, so the server is for local clients: it sends
no CORS header unless the origin is one the user named (`cors`), refuses a request from
any other browser origin, and refuses a Host header that is not a loopback name while it
listens on loopback (a page reaching it through DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
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
    # The recorded server's CORS headers are not ours to repeat: the user says who may call (`cors`).
    headers = [(k, v) for k, v in (response.headers if response else [])
               if k.lower() not in _HOP_BY_HOP and not k.lower().startswith("access-control-")]  # fmt: skip
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
    least served of those recorded without a request line (a bare SSE dump answers any
    path), else none."""

    def __init__(self, exchanges: Sequence[Exchange]) -> None:
        self.exchanges = [x for x in exchanges if x.response is not None]
        if not self.exchanges:
            raise ValueError("nothing to replay: no exchange has a response")
        self._served = [0] * len(self.exchanges)
        self._requests = [_json(x.request.body) if x.request else None for x in self.exchanges]
        self._lock = threading.Lock()
        self.paths = sorted({p for p in map(_path, self.exchanges) if p is not None})

    def match(self, path: str, body: bytes) -> Exchange | None:
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
            on_path = [n for n in same_path if _path(self.exchanges[n]) == path] or same_path
            if on_path:
                return self._serve(min(on_path, key=lambda n: (self._served[n], n)))
            return None

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

    def __init__(
        self, address: tuple[str, int], exchanges: Sequence[Exchange], speed: float = 1.0, cors: Iterable[str] = ()
    ) -> None:
        self.matcher = Matcher(exchanges)
        self.speed = speed
        self.served = 0
        # Browser origins allowed to call (and read) the server, as `origin()` writes them.
        self.allowed_origins = frozenset(origin(value) for value in cors)
        super().__init__(address, _Handler)
        self.loopback = is_loopback(str(self.server_address[0]), resolve=False)

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
        # Only an origin the user named may read the answer (`chatcap replay --cors ORIGIN`).
        allowed = self._origin()
        if allowed is not None:
            self.send_header("access-control-allow-origin", allowed)
            self.send_header("vary", "Origin")
        super().end_headers()

    def _origin(self) -> str | None:
        """The request's Origin when the user allowed it, else None."""
        value = self.headers.get("origin")
        return value if value is not None and value in self.server.allowed_origins else None

    def _refused(self) -> bool:
        """Answer 403 to a browser origin the user did not name, or, while listening on
        loopback, to a Host that is not a loopback name; True when it did."""
        host = self.headers.get("host")
        if self.server.loopback and host is not None and not is_loopback(_hostname(host), resolve=False):
            message = f"this replay server answers loopback names only, not Host {host!r}"
            self._json(403, {"error": {"message": message, "type": "host_not_allowed"}})
            return True
        origin_header = self.headers.get("origin")
        if origin_header is not None and self._origin() is None:
            message = (f"origin {origin_header!r} may not use this replay server: "
                       f"start it with --cors {origin_header} to allow it")  # fmt: skip
            self._json(403, {"error": {"message": message, "type": "origin_not_allowed"}})
            return True
        return False

    def do_OPTIONS(self) -> None:
        if self._refused():
            return
        self.send_response(204)
        self.send_header("access-control-allow-methods", "GET, POST, OPTIONS")
        self.send_header("access-control-allow-headers", self.headers.get("access-control-request-headers", "*"))
        if self.headers.get("access-control-request-private-network") == "true":
            self.send_header("access-control-allow-private-network", "true")  # Chrome's local-network preflight
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self._refused():
            return
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
        if self._refused():
            return
        found = self.server.matcher.match(self.path, body)
        if found is None:
            paths = ", ".join(self.server.matcher.paths[:5]) or "none"
            message = f"no recorded exchange answers POST {self.path.split('?', 1)[0]} (recorded paths: {paths})"
            self._json(404, {"error": {"message": message, "type": "not_found"}})
            return
        reply = reply_for(found)
        self.server.served += 1
        encoder = _encoder(reply.headers)
        try:
            self.send_response(reply.status, reply.reason)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            last = len(reply.pieces) - 1
            for n, data in enumerate(_paced(reply.pieces, arrived, self.server.speed)):
                if encoder is not None:
                    data = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
                    if n == last:
                        data += encoder.flush()
                chunk = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
                # The last read carries the end of the body: a client that stops reading at
                # [DONE] finds the response ended, as a real server's would be.
                self.wfile.write(chunk + (b"0\r\n\r\n" if n == last else b""))
                self.wfile.flush()
            if last < 0:
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


def origin(value: str) -> str:
    """`value` as a browser writes an Origin header (`scheme://host[:port]`, lower case, no
    default port); ValueError when it is not one (a path, `*`, `null`)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{value!r} is not an origin: give scheme, host and port, like http://localhost:3000")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} is not an origin: give scheme, host and port, like http://localhost:3000")
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port not in (None, default) else ""
    return f"{parts.scheme}://{host}{port}"


def is_loopback(host: str, resolve: bool = True) -> bool:
    """Whether `host` (an address or a name) is this machine only: 127.0.0.0/8, ::1,
    localhost; with `resolve`, also a name that resolves only to those (never for a Host
    header: a rebinding name resolves to 127.0.0.1 by design)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        if not resolve:
            return False
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in found)


def _hostname(host: str) -> str:
    """The name in a Host header, without its port."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def serve(
    exchanges: Sequence[Exchange],
    host: str = "127.0.0.1",
    port: int = 8000,
    speed: float = 1.0,
    certificate: tuple[str, str] | None = None,
    cors: Iterable[str] = (),
) -> ReplayServer:
    """A replay server bound to host:port (port 0 picks one); call `serve_forever()` on it.
    `certificate` = (certfile, keyfile) serves HTTPS; `cors` names the browser origins that
    may call it (none by default)."""
    server = ReplayServer((host, port), exchanges, speed, cors)
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
