"""Write HAR files in the shapes Chrome DevTools, Firefox DevTools, Charles Proxy and HTTP
Toolkit export into tests/data/har/: `python tests/data/make_har_fixtures.py [OUT_DIR]`.

None of these files was written by the product it is named after (hence `*-shape.har`):
each is built here from what that producer's HAR writer does, as read in its source code
or in files it wrote (each builder names what it read), around exchanges recorded through
the real proxy in captures/replayed/. The LLM calls carry the recorded request and
response bodies byte for byte, so tests/test_har_producers.py can hold each HAR's
reconstruction to the reconstruction of chatcap's own capture of the same exchange;
headers, timings, dates, encodings and underscore extensions follow the producer. The
pages, scripts, images, preflights, forms and websockets around the calls are invented.

The output is deterministic; the test checks that the committed files are what this
script writes.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
import sys
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPLAYED = ROOT / "captures" / "replayed"
OUT = Path(__file__).resolve().parent / "har"

Headers = list[tuple[str, str]]
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One LLM call in a fixture: the recorded exchange it carries and how the producer kept it.

    response: "body" (kept whole), "dropped" (the producer wrote the size but not the body)
    or "aborted" (the producer threw the response away when the client hung up).
    request: "text" (postData.text) or "params" (only postData.params, no text).
    """

    capture: str
    line: int
    response: str = "body"
    request: str = "text"


# The LLM calls of each fixture, in entry order (the test reads this table).
LLM_CALLS: dict[str, list[Call]] = {
    "chrome-devtools-shape.har": [
        Call("conversation.jsonl", 1),
        Call("conversation.jsonl", 2, response="dropped"),
        Call("gzip_stream.jsonl", 1),
    ],
    "firefox-devtools-shape.har": [
        Call("reasoning_tool_call.jsonl", 1),
        Call("reasoning_tool_call.jsonl", 2),
        Call("error_mid_stream.jsonl", 1),
    ],
    "charles-shape.har": [
        Call("conversation.jsonl", 3, request="params"),
        Call("conversation.jsonl", 4),
        Call("rate_limited.jsonl", 1),
        Call("two_choices.jsonl", 1),
    ],
    "httptoolkit-shape.har": [
        Call("conversation.jsonl", 5),
        Call("conversation.jsonl", 6),
        Call("client_abort.jsonl", 1, response="aborted"),
    ],
}


# -- the recorded exchanges ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a fixture takes from one line of captures/replayed/: bodies, wire headers, timings."""

    url: str
    started: datetime
    request_headers: Headers
    request_body: str
    status: int
    reason: str
    response_headers: Headers
    body: bytes  # the decoded response body, as the addon wrote it
    reads: list[int]  # the byte count of each network read (for chunked framing sizes)
    send: float
    wait: float
    receive: float
    time: float

    @property
    def host(self) -> str:
        return self.url.split("/")[2]

    @property
    def port(self) -> str:
        return self.host.rsplit(":", 1)[1]

    @property
    def origin(self) -> str:
        return "/".join(self.url.split("/")[:3])

    @property
    def mime(self) -> str:
        return header(self.response_headers, "content-type") or ""

    @property
    def server_and_date(self) -> Headers:
        return [(n, v) for n, v in self.response_headers if n in ("Server", "Date")]


def recorded(call: Call) -> Recorded:
    line = (REPLAYED / call.capture).read_text(encoding="utf-8").splitlines()[call.line - 1]
    entry = json.loads(line)
    request, response, timings = entry["request"], entry["response"], entry["timings"]
    ends = [end for _, end in response["_chunks"]]
    return Recorded(
        url=request["url"],
        started=datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00")),
        request_headers=[(h["name"], h["value"]) for h in request["headers"]],
        request_body=request["postData"]["text"],
        status=response["status"],
        reason=response["statusText"],
        response_headers=[(h["name"], h["value"]) for h in response["headers"]],
        body=response["content"]["text"].encode("utf-8"),
        reads=[b - a for a, b in zip([0, *ends], ends, strict=False)],
        send=timings["send"],
        wait=timings["wait"],
        receive=timings["receive"],
        time=entry["time"],
    )


# -- what every producer needs ---------------------------------------------------------------------


def heads(block: str, **values: object) -> Headers:
    """Headers written one per line as `Name: value`, `{name}` filled in from `values`; a
    pseudo-header keeps its leading colon (`:method: GET`)."""
    pairs = []
    for line in filter(None, (line.strip() for line in block.splitlines())):
        line = line.format(**values)
        cut = line.index(": ", 1)
        pairs.append((line[:cut], line[cut + 2 :]))
    return pairs


def header(pairs: Headers, name: str) -> str | None:
    return next((value for key, value in pairs if key.lower() == name.lower()), None)


def named(pairs: Headers) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def head_size(first_line: str, pairs: Headers) -> int:
    """Bytes of a message head on the wire (HTTP/1.1): start line, headers, blank line."""
    return len((first_line + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in pairs) + "\r\n").encode())


def chunked_size(reads: list[int]) -> int:
    """Bytes of a body sent with Transfer-Encoding: chunked, one chunk per recorded read."""
    return sum(len(f"{n:x}") + 4 + n for n in reads) + len("0\r\n\r\n")


def stamp(when: datetime, offset_minutes: int) -> str:
    """An ISO 8601 time with milliseconds in a local offset; UTC as `Z`."""
    text = when.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def ms(value: float) -> float | int:
    """A millisecond figure as JavaScript prints it (no `.0` on whole numbers)."""
    value = round(value, 3)
    return int(value) if value == int(value) else value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(width: int, height: int, rgba: tuple[int, int, int, int]) -> bytes:
    """A small one-colour PNG (binary bytes for the image entries)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes(rgba) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


LOGO = png(16, 16, (47, 111, 186, 255))
PAGE = (
    b'<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Trail chat</title>'
    b'<link rel="stylesheet" href="/assets/app.css"><script type="module" src="/assets/app.js"></script></head>\n'
    b'<body><img src="/assets/logo.png" alt=""><main id="chat"></main></body>\n</html>\n'
)
APP_JS = b'import { streamChat } from "./api.js";\ndocument.querySelector("#chat").dataset.ready = "1";\n'
APP_CSS = b"main{max-width:42rem;margin:auto;font:16px/1.5 system-ui}\n"
ACCEPT = {
    "document": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "script": "*/*",
    "style": "text/css,*/*;q=0.1",
    "image": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "font": "application/font-woff2;q=1.0,*/*;q=0.8",
}
PREFLIGHT_ALLOW = heads("""
    access-control-allow-origin: *
    access-control-allow-methods: POST, OPTIONS
    access-control-allow-headers: authorization, content-type
    access-control-max-age: 600
""")
CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
CHROME_HINTS = """
    sec-ch-ua: "Chromium";v="140", "Not=A?Brand";v="24", "Google Chrome";v="140"
    sec-ch-ua-mobile: ?0
    sec-ch-ua-platform: "Linux"
"""
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
MODELS = b'{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}'
CONFIG = b'{"models":["gpt-4o-mini"],"stream":true,"maxTokens":1024}'


def dump(har: Json, indent: int | None) -> bytes:
    """JSON as JavaScript's JSON.stringify writes it (no trailing newline)."""
    if indent is None:
        return json.dumps(har, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return json.dumps(har, ensure_ascii=False, indent=indent).encode("utf-8")


# -- Chrome DevTools -------------------------------------------------------------------------------


def chrome_devtools() -> Json:
    """Chrome DevTools, Network panel, "Export HAR (sanitized)…" (the default "Save all as HAR").

    Based on:
    - devtools-frontend's HAR writer, front_end/models/har/Log.ts and Writer.ts
      https://github.com/ChromeDevTools/devtools-frontend/blob/main/front_end/models/har/Log.ts
      https://github.com/ChromeDevTools/devtools-frontend/blob/main/front_end/models/har/Writer.ts
      creator "WebInspector" + the AppleWebKit version; one page per page load with
      pageTimings; entry keys `_connectionId`, `_initiator` (type, url, lineNumber, stack,
      requestId), `_priority`, `_resourceType` (document, script, image, fetch, preflight,
      websocket), `_fromCache`, `_webSocketMessages` (type/time/opcode/data), `connection`
      = the server's port; response `_transferSize`, `_error`, `_fetchedViaServiceWorker`;
      content `size` (decoded) and `compression` (size minus body bytes on the wire:
      negative for a chunked stream that was not compressed); `text` only when DevTools
      still holds the body, base64 `encoding` for binary; timings -1 for "does not apply",
      `ssl` inside `connect`, `_blocked_queueing` and the `_worker*` fields; `time` the sum
      of the non-negative phases; the sanitized export leaves out Authorization and Cookie.
    - an export by a Chromium 140 browser published in a public repository: headers sorted
      by name (uppercase first), the key order above, JSON indented by 2.
    - https://github.com/vercel-labs/agent-browser/pull/1551: a body is only in the HAR while
      it is in DevTools' per-request buffer (once evicted, or after a navigation without
      "Preserve log", the entry keeps its size and loses `text`).
    The body kept for a gzip response is the decoded one, under its Content-Encoding header.
    """
    first, dropped, gzipped = (recorded(call) for call in LLM_CALLS["chrome-devtools-shape.har"])
    page = "http://localhost:5173/"
    page_start = first.started - timedelta(seconds=8, milliseconds=312)
    ids = iter(range(48211, 48300))
    browser = (
        """
        Accept-Encoding: gzip, deflate, br, zstd
        Accept-Language: en-GB,en;q=0.9
        Connection: keep-alive
        Host: {host}
        User-Agent: {ua}
        """
        + CHROME_HINTS
    )

    def timings(send: float, wait: float, receive: float, blocked: float, connect: float = -1) -> Json:
        return {
            "blocked": ms(blocked),
            "dns": -1,
            "ssl": -1,
            "connect": ms(connect),
            "send": ms(send),
            "wait": ms(wait),
            "receive": ms(receive),
            "_blocked_queueing": ms(blocked * 0.62),
            **dict.fromkeys(("_workerStart", "_workerReady", "_workerFetchStart", "_workerRespondWithSettled"), -1),
        }

    def entry(started: datetime, chrome: Json, request: Json, response: Json, timing: Json, port: str) -> Json:
        phases = ("blocked", "dns", "connect", "send", "wait", "receive")
        return {
            "_connectionId": str(next(ids)),
            **chrome,
            "cache": {},
            "connection": port,
            "pageref": "page_1",
            "request": request,
            "response": response,
            "serverIPAddress": "127.0.0.1",
            "startedDateTime": stamp(started, 0),
            "time": ms(sum(max(timing[p], 0) for p in phases)),
            "timings": timing,
        }

    def request(method: str, url: str, pairs: Headers, body: str | None = None) -> Json:
        pairs = sorted(pairs)
        out = {
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": named(pairs),
            "queryString": [{"name": "token", "value": url.split("token=")[1]}] if "token=" in url else [],
            "cookies": [],
            "headersSize": head_size(f"{method} {path_of(url)} HTTP/1.1", pairs),
            "bodySize": len(body.encode()) if body is not None else 0,
        }
        if body is not None:
            out["postData"] = {"mimeType": "application/json", "text": body}
        return out

    def response(status: int, reason: str, pairs: Headers, content: Json, wire_body: int) -> Json:
        pairs = sorted(pairs)
        head = head_size(f"HTTP/1.1 {status} {reason}", pairs)
        return {
            "status": status,
            "statusText": reason,
            "httpVersion": "HTTP/1.1",
            "headers": named(pairs),
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": head,
            "bodySize": wire_body,
            "_transferSize": head + wire_body,
            "_error": None,
            "_fetchedViaServiceWorker": False,
        }

    def asset(path: str, mime: str, data: bytes, at_ms: int, kind: str, line: int) -> Json:
        wire = chunked_size([len(data)])
        content = {"size": len(data), "mimeType": mime, "compression": len(data) - wire}
        content |= {"text": data.decode()} if mime.startswith("text/") else {"text": b64(data), "encoding": "base64"}
        navigate = kind == "document"
        chrome = {
            "_initiator": {"type": "other"} if navigate else {"type": "parser", "url": page, "lineNumber": line},
            "_priority": {"document": "VeryHigh", "image": "Low"}.get(kind, "High"),
            "_resourceType": kind,
            **({"_fromCache": "disk"} if kind == "image" else {}),
        }
        asked = heads(
            browser
            + """
            Accept: {accept}
            Sec-Fetch-Dest: {kind}
            Sec-Fetch-Mode: {mode}
            Sec-Fetch-Site: {site}
            """
            + ("Upgrade-Insecure-Requests: 1" if navigate else f"Referer: {page}"),
            host="localhost:5173",
            ua=CHROME_UA,
            accept=ACCEPT[kind],
            kind=kind,
            mode="navigate" if navigate else "no-cors",
            site="none" if navigate else "same-origin",
        )
        sent = heads("Content-Type: {mime}\nDate: Mon, 23 Nov 2026 07:02:40 GMT\nTransfer-Encoding: chunked", mime=mime)
        return entry(
            page_start + timedelta(milliseconds=at_ms),
            chrome,
            request("GET", page + path, asked),
            response(200, "OK", sent, content, wire),
            timings(0.081, 1.913 + 1.1 * navigate, 0.402, 0.972, 0.377 if navigate else -1),
            "5173",
        )

    def cors(call: Recorded, block: str, **values: str) -> Headers:
        return heads(
            browser
            + """
            Origin: http://localhost:5173
            Referer: {page}
            Sec-Fetch-Dest: empty
            Sec-Fetch-Mode: cors
            Sec-Fetch-Site: cross-site
            """
            + block,
            host=call.host,
            ua=CHROME_UA,
            page=page,
            **values,
        )

    def preflight(call: Recorded) -> Json:
        asked = cors(
            call, "Accept: */*\nAccess-Control-Request-Headers: content-type\nAccess-Control-Request-Method: POST"
        )
        asked = [(n, v) for n, v in asked if not n.startswith("sec-ch-ua")]  # client hints are not sent on preflights
        chrome = {
            "_initiator": {"type": "preflight", "url": call.url, "requestId": f"{next(ids)}.17"},
            "_priority": "High",
            "_resourceType": "preflight",
        }
        return entry(
            call.started - timedelta(milliseconds=4),
            chrome,
            request("OPTIONS", call.url, asked),
            response(
                204,
                "No Content",
                call.server_and_date + PREFLIGHT_ALLOW,
                {"size": 0, "mimeType": "x-unknown", "text": ""},
                0,
            ),
            timings(0.062, 1.481, 0.097, 1.318, 0.412),
            call.port,
        )

    def fetch(call: Recorded, line: int, keep_body: bool = True) -> Json:
        block = "Accept: text/event-stream\nContent-Length: {length}\nContent-Type: application/json"
        asked = cors(call, block, length=str(len(call.request_body.encode())))
        gzipped = header(call.response_headers, "content-encoding") == "gzip"
        wire = chunked_size([len(gzip.compress(call.body, mtime=0))] if gzipped else call.reads)
        content = {"size": len(call.body), "mimeType": call.mime, "compression": len(call.body) - wire}
        if keep_body:
            content["text"] = call.body.decode("utf-8")
        frames = [
            {
                "functionName": "streamChat",
                "scriptId": "87",
                "url": page + "assets/api.js",
                "lineNumber": line,
                "columnNumber": 25,
            },
            {
                "functionName": "send",
                "scriptId": "86",
                "url": page + "assets/app.js",
                "lineNumber": 112,
                "columnNumber": 9,
            },
        ]
        chrome = {
            "_initiator": {"type": "script", "stack": {"callFrames": frames}},
            "_priority": "High",
            "_resourceType": "fetch",
        }
        return entry(
            call.started,
            chrome,
            request("POST", call.url, asked, call.request_body),
            response(call.status, call.reason, call.response_headers, content, wire),
            timings(call.send, call.wait, call.receive, 2.117),
            call.port,
        )

    def websocket() -> Json:
        asked = heads(
            browser
            + """
            Cache-Control: no-cache
            Origin: http://localhost:5173
            Pragma: no-cache
            Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits
            Sec-WebSocket-Key: p0D3GZ4cL9t5QwN2hYx8aA==
            Sec-WebSocket-Protocol: vite-hmr
            Sec-WebSocket-Version: 13
            Upgrade: websocket
            """,
            host="localhost:5173",
            ua=CHROME_UA,
        )
        sent = heads("""
            Connection: Upgrade
            Sec-WebSocket-Accept: wRXgf1S3P3o5xdC6s1V9mB4+hQ8=
            Sec-WebSocket-Protocol: vite-hmr
            Upgrade: websocket
        """)
        opened = page_start.timestamp() + 0.041
        frames = [
            {
                "functionName": "setupWebSocket",
                "scriptId": "86",
                "url": page + "assets/app.js",
                "lineNumber": 3,
                "columnNumber": 17,
            }
        ]
        chrome = {
            "_initiator": {"type": "script", "stack": {"callFrames": frames}},
            "_priority": "Medium",
            "_resourceType": "websocket",
            "_webSocketMessages": [
                {"type": "receive", "time": round(opened + 0.004, 6), "opcode": 1, "data": '{"type":"connected"}'},
                {
                    "type": "send",
                    "time": round(opened + 30.0, 6),
                    "opcode": 1,
                    "data": '{"type":"custom","event":"vite:ping"}',
                },
                {"type": "receive", "time": round(opened + 30.003, 6), "opcode": 1, "data": '{"type":"pong"}'},
            ],
        }
        return entry(
            page_start + timedelta(milliseconds=41),
            chrome,
            request("GET", "ws://localhost:5173/?token=q3Zt0bX1kP", asked),
            response(101, "Switching Protocols", sent, {"size": 0, "mimeType": "x-unknown"}, 0),
            timings(0, 2.204, 0, 0.533),
            "5173",
        )

    entries = [
        asset("", "text/html", PAGE, 0, "document", 0),
        asset("assets/app.js", "text/javascript", APP_JS, 23, "script", 1),
        websocket(),
        asset("assets/logo.png", "image/png", LOGO, 58, "image", 2),
        preflight(first),
        fetch(first, 41),
        fetch(dropped, 41, keep_body=False),  # the body was no longer in DevTools' buffer
        preflight(gzipped),
        fetch(gzipped, 58),
    ]
    pages = [
        {
            "startedDateTime": stamp(page_start, 0),
            "id": "page_1",
            "title": page,
            "pageTimings": {"onContentLoad": 212.784, "onLoad": 265.901},
        }
    ]
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": pages,
            "entries": entries,
        }
    }


# -- Firefox DevTools ------------------------------------------------------------------------------


def firefox_devtools() -> Json:
    """Firefox DevTools, Network Monitor, "Save All As HAR".

    Based on:
    - Firefox's HAR builder, devtools/client/netmonitor/src/har/har-builder.js and
      har-builder-utils.js, read in the copies of mozilla-central kept by
      https://github.com/SAP/project-foxhound/blob/main/devtools/client/netmonitor/src/har/har-builder.js
      and https://github.com/Floorp-Projects/Floorp (same path):
      creator and browser "Firefox" + version; pages (id, pageTimings, startedDateTime,
      title = the URL); startedDateTime in local time with its offset; request keys
      bodySize (the length of postData.text), method, url, httpVersion, headers, cookies,
      queryString, headersSize, postData {mimeType, params, text} where `params` is `[]`
      unless the body is URL-encoded; response content {mimeType, size, encoding?, text},
      or {mimeType, size, comment: "Response bodies are not included."} when discarded;
      bodySize = bytes transferred; timings blocked/dns/connect/ssl/send/wait/receive as
      the network layer reports them, `time` their sum; `_securityState`, `_priority`,
      `serverIPAddress`, `connection` (the port), `pageref` last.
    - Firefox exports published in public repositories (Firefox 67 to 151): whole-millisecond
      timings, `X-Firefox-Spdy: h2` on HTTP/2 responses, headers in wire order and case,
      some responses with a `size` and no `text` at all, JSON indented by 2.
    Bodies are the decoded ones (the Network Monitor keeps decoded text); CORS preflights
    are entries of their own.
    """
    first, second, errored = (recorded(call) for call in LLM_CALLS["firefox-devtools-shape.har"])
    offset = 60  # Central European Time in November
    site = "https://chat.example.test/"
    page_start = first.started - timedelta(seconds=6, milliseconds=140)
    api = f"""
        Accept-Language: en-GB,en;q=0.5
        Accept-Encoding: gzip, deflate, br, zstd
        Referer: {site}
        Origin: https://chat.example.test
        Connection: keep-alive
        Sec-Fetch-Dest: empty
        Sec-Fetch-Mode: cors
        Sec-Fetch-Site: cross-site
        Priority: u=4
    """

    def entry(started: datetime, request: Json, response: Json, phases: tuple[float, ...], port: str = "443") -> Json:
        timing = {
            name: round(value)
            for name, value in zip(("blocked", "dns", "connect", "ssl", "send", "wait", "receive"), phases, strict=True)
        }
        secure = port == "443"
        return {
            "startedDateTime": stamp(started, offset),
            "request": request,
            "response": response,
            "cache": {},
            "timings": timing,
            "time": sum(value for value in timing.values() if value != -1),
            "_securityState": "secure" if secure else "insecure",
            "_priority": "Normal",
            "serverIPAddress": "203.0.113.24" if secure else "127.0.0.1",
            "connection": port,
            "pageref": "page_1",
        }

    def request(method: str, url: str, version: str, pairs: Headers, post: Json | None = None) -> Json:
        out = {
            "bodySize": len(post["text"]) if post else 0,  # a JavaScript string length, as Firefox counts
            "method": method,
            "url": url,
            "httpVersion": version,
            "headers": named(pairs),
            "cookies": [],
            "queryString": [],
            "headersSize": head_size(f"{method} {path_of(url)} {version}", pairs),
        }
        if post:
            out["postData"] = post
        return out

    def response(status: int, reason: str, version: str, pairs: Headers, content: Json, body_bytes: int) -> Json:
        head = head_size(f"{version} {status} {reason}", pairs)
        return {
            "status": status,
            "statusText": reason,
            "httpVersion": version,
            "headers": named(pairs),
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": head,
            "bodySize": head + body_bytes,
        }

    def asset(path: str, mime: str, data: bytes | None, size: int, at_ms: int, dest: str) -> Json:
        navigate = dest == "document"
        asked = heads(
            """
            Host: chat.example.test
            User-Agent: {ua}
            Accept: {accept}
            Accept-Language: en-GB,en;q=0.5
            Accept-Encoding: gzip, deflate, br, zstd
            Connection: keep-alive
            Sec-Fetch-Dest: {dest}
            Sec-Fetch-Mode: {mode}
            Sec-Fetch-Site: {fetch_site}
            Priority: {priority}
            """
            + ("" if navigate else f"Referer: {site}"),
            ua=FIREFOX_UA,
            accept=ACCEPT[dest],
            dest=dest,
            mode="navigate" if navigate else "no-cors",
            fetch_site="none" if navigate else "same-origin",
            priority="u=0, i" if navigate else "u=2",
        )
        content: Json = {"mimeType": mime, "size": size}
        if data is not None:  # a font the Network Monitor kept no text for
            content |= (
                {"text": data.decode()} if mime.startswith("text/") else {"encoding": "base64", "text": b64(data)}
            )
        sent = heads(
            """
            content-type: {mime}
            date: Mon, 23 Nov 2026 07:03:03 GMT
            cache-control: public, max-age=3600
            content-length: {size}
            X-Firefox-Spdy: h2
            """,
            mime=mime,
            size=size,
        )
        return entry(
            page_start + timedelta(milliseconds=at_ms),
            request("GET", site + path, "HTTP/2", asked),
            response(200, "OK", "HTTP/2", sent, content, size),
            (3, 12, 21, 14, 0, 46, 1) if navigate else (0, 0, 0, 0, 0, 31, 2),
        )

    def preflight(call: Recorded) -> Json:
        block = "Accept: */*\nAccess-Control-Request-Method: POST\nAccess-Control-Request-Headers: content-type"
        asked = heads(f"Host: {call.host}\nUser-Agent: {FIREFOX_UA}\n{block}\n{api}")
        return entry(
            call.started - timedelta(milliseconds=3),
            request("OPTIONS", call.url, "HTTP/1.1", asked),
            response(
                204,
                "No Content",
                "HTTP/1.1",
                call.server_and_date + PREFLIGHT_ALLOW,
                {"mimeType": "", "size": 0, "text": ""},
                0,
            ),
            (0, 0, 1, 0, 0, 2, 0),
            call.port,
        )

    def fetch(call: Recorded) -> Json:
        length = len(call.request_body.encode())
        block = f"Accept: text/event-stream\nContent-Type: application/json\nContent-Length: {length}"
        asked = heads(f"Host: {call.host}\nUser-Agent: {FIREFOX_UA}\n{block}\n{api}")
        post = {"mimeType": "application/json", "params": [], "text": call.request_body}
        content = {"mimeType": call.mime, "size": len(call.body), "text": call.body.decode("utf-8")}
        return entry(
            call.started,
            request("POST", call.url, "HTTP/1.1", asked, post),
            response(call.status, call.reason, "HTTP/1.1", call.response_headers, content, chunked_size(call.reads)),
            (0, 0, 0, 0, call.send, call.wait, call.receive),
            call.port,
        )

    def feedback() -> Json:
        form = "rating=up&message_id=msg_0042&comment=Clear+and+short"
        asked = heads(
            f"""
            Host: chat.example.test
            User-Agent: {FIREFOX_UA}
            Accept: */*
            Accept-Language: en-GB,en;q=0.5
            Accept-Encoding: gzip, deflate, br, zstd
            Referer: {site}
            Content-Type: application/x-www-form-urlencoded
            Content-Length: {len(form)}
            Origin: https://chat.example.test
            Connection: keep-alive
            """
        )
        params = [
            {"name": "rating", "value": "up"},
            {"name": "message_id", "value": "msg_0042"},
            {"name": "comment", "value": "Clear and short"},
        ]
        post = {"mimeType": "application/x-www-form-urlencoded", "params": params, "text": form}
        sent = heads("date: Mon, 23 Nov 2026 07:03:16 GMT\nX-Firefox-Spdy: h2")
        return entry(
            second.started + timedelta(seconds=4, milliseconds=250),
            request("POST", site + "api/feedback", "HTTP/2", asked, post),
            response(204, "No Content", "HTTP/2", sent, {"mimeType": "", "size": 0, "text": ""}, 0),
            (0, 0, 0, 0, 0, 38, 0),
        )

    entries = [
        asset("", "text/html; charset=utf-8", PAGE, len(PAGE), 0, "document"),
        asset("assets/app.css", "text/css", APP_CSS, len(APP_CSS), 61, "style"),
        asset("assets/logo.png", "image/png", LOGO, len(LOGO), 64, "image"),
        asset("assets/inter.woff2", "font/woff2", None, 48212, 70, "font"),
        preflight(first),
        fetch(first),
        fetch(second),
        feedback(),
        preflight(errored),
        fetch(errored),
    ]
    pages = [
        {
            "id": "page_1",
            "pageTimings": {"onContentLoad": 187, "onLoad": 241},
            "startedDateTime": stamp(page_start, offset),
            "title": site,
        }
    ]
    firefox = {"name": "Firefox", "version": "140.0"}
    return {"log": {"version": "1.2", "creator": firefox, "browser": firefox, "pages": pages, "entries": entries}}


# -- Charles Proxy ---------------------------------------------------------------------------------


def charles() -> Json:
    """Charles Proxy, File > Export Session… > HTTP Archive (.har).

    Charles is closed source; based on files it wrote, published in public repositories:
    - a Charles 4.6.4 export: https://github.com/Is4everDearlls/charles_conversion_to_jmeter_script_tool/blob/main/charles.har
      creator {"name": "Charles Proxy", "version": "4.6.4"}, no pages, no browser;
      startedDateTime in local time with its offset; `time` and timings whole
      milliseconds, dns/connect/ssl/send/wait/receive and no `blocked`, -1 where a
      connection was reused; entry keys startedDateTime, time, request, response,
      serverIPAddress, cache, timings; response `_charlesStatus: "COMPLETE"`,
      `redirectURL: null`; HTTP/2 messages keep their pseudo-headers (`:method`,
      `:status`...) and have `statusText: null`; response cookies with `comment` and
      `_maxAge` null; an `application/json` body written base64 (`encoding: "base64"`)
      although it is plain UTF-8 text.
    - Charles exports pasted into the comments of generated mock files in public
      repositories (found by their `_charlesStatus` key): HTTP/1.1 responses keep their
      reason phrase; `text/*` bodies are plain text; a body sent as
      `application/x-www-form-urlencoded` is written as `postData.params` alone, with no
      `text`, even when it is JSON (the whole JSON becomes one parameter name with an
      empty value); a response without a Content-Type has `mimeType: null`.
    Here curl -d (which labels its JSON application/x-www-form-urlencoded) gives the
    params-only request; curl and the openai SDK reached the local server through
    Charles, and so did a browser started with --proxy-bypass-list=<-loopback>.
    """
    curl_call, browser_call, limited, two = (recorded(call) for call in LLM_CALLS["charles-shape.har"])
    offset = -300  # US Eastern time in November
    page = "http://localhost:5173/"
    page_start = curl_call.started - timedelta(seconds=5, milliseconds=702)
    seen: set[str] = set()
    chrome = (
        """
        Host: {host}
        Connection: keep-alive
        User-Agent: {ua}
        """
        + CHROME_HINTS
        + """
        Sec-Fetch-Site: {fetch_site}
        Sec-Fetch-Mode: {mode}
        Sec-Fetch-Dest: {dest}
        Accept-Encoding: gzip, deflate, br, zstd
        Accept-Language: en-US,en;q=0.9
        """
    )

    def entry(
        started: datetime, request: Json, response: Json, phases: tuple[float, ...], origin: str, ip: str = "127.0.0.1"
    ) -> Json:
        send, wait, receive = phases
        fresh = origin not in seen
        seen.add(origin)
        timing = {
            "dns": 0 if fresh and "localhost" in origin else -1,
            "connect": 1 if fresh else -1,
            "ssl": 11 if fresh and origin.startswith("https") else -1,
            "send": round(send),
            "wait": round(wait),
            "receive": round(receive),
        }
        return {
            "startedDateTime": stamp(started, offset),
            "time": sum(value for value in timing.values() if value > 0),
            "request": request,
            "response": response,
            "serverIPAddress": ip,
            "cache": {},
            "timings": timing,
        }

    def request(method: str, url: str, version: str, pairs: Headers, post: Json | None = None) -> Json:
        out = {
            "method": method,
            "url": url,
            "httpVersion": version,
            "cookies": [],
            "headers": named(pairs),
            "queryString": [],
        }
        if post:
            out["postData"] = post
        out["headersSize"] = head_size(f"{method} {path_of(url)} {version}", pairs)
        out["bodySize"] = int(header(pairs, "content-length") or 0)
        return out

    def content(mime: str | None, data: bytes) -> Json:
        if mime and (mime.startswith("text/") or "charset=" in mime):
            return {"size": len(data), "mimeType": mime, "text": data.decode("utf-8")}
        return {"size": len(data), "mimeType": mime, "text": b64(data), "encoding": "base64"}

    def response(
        status: int, reason: str | None, version: str, pairs: Headers, body: Json, cookies: list | None = None
    ) -> Json:
        return {
            "_charlesStatus": "COMPLETE",
            "status": status,
            "statusText": reason,
            "httpVersion": version,
            "cookies": cookies or [],
            "headers": named(pairs),
            "content": body,
            "redirectURL": None,
            "headersSize": head_size(f"{version} {status} {reason or ''}".rstrip(), pairs),
            "bodySize": body["size"],
        }

    def asset(path: str, mime: str, data: bytes, at_ms: int, dest: str) -> Json:
        navigate = dest == "document"
        extra = "" if navigate else f"Referer: {page}"
        block = chrome.replace("User-Agent: {ua}", "User-Agent: {ua}\nAccept: {accept}") + extra
        values = {"fetch_site": "none" if navigate else "same-origin", "mode": "navigate" if navigate else "no-cors"}
        asked = heads(block, host="localhost:5173", ua=CHROME_UA, accept=ACCEPT[dest], dest=dest, **values)
        sent = heads(f"Content-Type: {mime}\nDate: Mon, 23 Nov 2026 07:02:48 GMT\nContent-Length: {len(data)}")
        return entry(
            page_start + timedelta(milliseconds=at_ms),
            request("GET", page + path, "HTTP/1.1", asked),
            response(200, "OK", "HTTP/1.1", sent, content(mime, data)),
            (0, 3, 0),
            "http://localhost:5173",
        )

    def llm(call: Recorded, pairs: Headers, post: Json) -> Json:
        return entry(
            call.started,
            request("POST", call.url, "HTTP/1.1", pairs, post),
            response(call.status, call.reason, "HTTP/1.1", call.response_headers, content(call.mime, call.body)),
            (call.send, call.wait, call.receive),
            call.origin,
        )

    def from_cdn() -> Json:
        """The page's config from a CDN over HTTP/2: pseudo-headers, no reason phrase, a cookie, JSON as base64."""
        asked = heads(
            """
            :method: GET
            :authority: cdn.example.test
            :scheme: https
            :path: /trail-chat/config.json
            user-agent: {ua}
            accept: */*
            origin: http://localhost:5173
            sec-fetch-site: cross-site
            sec-fetch-mode: cors
            sec-fetch-dest: empty
            referer: {page}
            accept-encoding: gzip, deflate, br, zstd
            accept-language: en-US,en;q=0.9
            """,
            ua=CHROME_UA,
            page=page,
        )
        sent = heads(
            """
            :status: 200
            date: Mon, 23 Nov 2026 07:02:48 GMT
            content-type: application/json
            content-length: {length}
            access-control-allow-origin: *
            set-cookie: edge=fra1; Path=/; Secure; HttpOnly
            """,
            length=len(CONFIG),
        )
        cookie = {"name": "edge", "value": "fra1", "path": "/", "domain": None, "expires": None}
        cookie |= {"httpOnly": True, "secure": True, "comment": None, "_maxAge": None}
        return entry(
            page_start + timedelta(milliseconds=64),
            request("GET", "https://cdn.example.test/trail-chat/config.json", "HTTP/2.0", asked),
            response(200, None, "HTTP/2.0", sent, content("application/json", CONFIG), [cookie]),
            (0, 27, 1),
            "https://cdn.example.test",
            "198.51.100.7",
        )

    def fetched(call: Recorded, block: str, **values: str) -> Headers:
        block = (
            chrome.replace("User-Agent: {ua}", "User-Agent: {ua}\n" + block)
            + f"Origin: http://localhost:5173\nReferer: {page}"
        )
        return heads(block, host=call.host, ua=CHROME_UA, fetch_site="cross-site", mode="cors", dest="empty", **values)

    def preflight(call: Recorded) -> Json:
        block = "Accept: */*\nAccess-Control-Request-Method: POST\nAccess-Control-Request-Headers: content-type"
        asked = [(n, v) for n, v in fetched(call, block) if not n.startswith("sec-ch-ua")]
        return entry(
            call.started - timedelta(milliseconds=4),
            request("OPTIONS", call.url, "HTTP/1.1", asked),
            response(
                204, "No Content", "HTTP/1.1", call.server_and_date + PREFLIGHT_ALLOW, {"size": 0, "mimeType": None}
            ),
            (0, 2, 0),
            call.origin,
        )

    length = str(len(curl_call.request_body.encode()))
    curl = heads(
        """
        Host: {host}
        User-Agent: curl/8.5.0
        Accept: */*
        Authorization: {key}
        Content-Length: {length}
        Content-Type: application/x-www-form-urlencoded
        """,
        host=curl_call.host,
        key=header(curl_call.request_headers, "Authorization"),
        length=length,
    )
    form = {"mimeType": "application/x-www-form-urlencoded", "params": [{"name": curl_call.request_body, "value": ""}]}
    block = "Content-Type: application/json\nAccept: text/event-stream\nContent-Length: {length}"
    fetch_headers = fetched(browser_call, block, length=str(len(browser_call.request_body.encode())))
    entries = [
        asset("", "text/html;charset=utf-8", PAGE, 0, "document"),
        asset("assets/app.js", "text/javascript", APP_JS, 25, "script"),
        asset("assets/logo.png", "image/png", LOGO, 57, "image"),
        from_cdn(),
        llm(curl_call, curl, form),
        preflight(browser_call),
        llm(browser_call, fetch_headers, {"mimeType": "application/json", "text": browser_call.request_body}),
        llm(limited, limited.request_headers, {"mimeType": "application/json", "text": limited.request_body}),
        llm(two, two.request_headers, {"mimeType": "application/json", "text": two.request_body}),
    ]
    return {"log": {"version": "1.2", "creator": {"name": "Charles Proxy", "version": "4.6.4"}, "entries": entries}}


# -- HTTP Toolkit ----------------------------------------------------------------------------------


def httptoolkit() -> Json:
    """HTTP Toolkit, the "Export these exchanges as a HAR file" button under the traffic list.

    Based on httptoolkit-ui (https://github.com/httptoolkit/httptoolkit-ui), read at commit
    cc63e76 (June 2026):
    - src/model/http/har.ts: creator "HTTP Toolkit" + the UI build (its git commit); one
      page per traffic source (id and title the client's summary, e.g. "Chrome 140
      (Linux)", from src/model/http/sources.ts; empty pageTimings) and `pageref` naming
      it; `log._tlsErrors`; startedDateTime by date-fns 1 `format()` (local time with its
      offset); `time` the whole exchange in fractional ms; timings blocked/dns/connect/ssl
      -1 and send/wait/receive as the proxy measured them; request keys method, url,
      httpVersion, cookies, headers (raw: wire case and order), queryString, headersSize
      -1, bodySize, postData {mimeType, text} (plus `params` for URL-encoded bodies);
      response content {mimeType, size (decoded), text}, base64 `encoding` only when the
      decoded body is not UTF-8, bodySize the encoded length; `_pinned: true` on pinned
      exchanges; websockets with `_resourceType: "websocket"`, `_webSocketMessages` (time
      in epoch seconds) and `_webSocketClose`; an aborted exchange is written as status 0,
      no headers, content {size 0, mimeType "application/x-unknown"}, bodySize -1.
    - src/model/http/http-exchange.ts, markAborted(): when the client goes away the
      response becomes 'aborted', also midway through a streamed response, so what had
      arrived is not exported.
    - src/components/view/view-event-list-buttons.tsx: JSON.stringify without indentation,
      so the whole HAR is one line.
    """
    browser_call, sdk_call, aborted = (recorded(call) for call in LLM_CALLS["httptoolkit-shape.har"])
    offset = 330  # India Standard Time: a half-hour offset
    page = "http://localhost:5173/"
    chrome, python, httpx = "Chrome 140 (Linux)", "OpenAI/Python", "Python-httpx/0.27.2"
    page_start = browser_call.started - timedelta(seconds=4, milliseconds=87)
    tail = """
        Accept-Encoding: gzip, deflate, br, zstd
        Accept-Language: en-IN,en;q=0.9
    """

    def entry(
        source: str, started: datetime, request: Json, response: Json, phases: tuple[float, ...], time: float
    ) -> Json:
        send, wait, receive = (ms(value) for value in phases)
        return {
            "pageref": source,
            "startedDateTime": stamp(started, offset),
            "time": ms(time),
            "request": request,
            "response": response,
            "cache": {},
            "timings": {
                "blocked": -1,
                "dns": -1,
                "connect": -1,
                "ssl": -1,
                "send": send,
                "wait": wait,
                "receive": receive,
            },
        }

    def request(method: str, url: str, pairs: Headers, body: str | None = None) -> Json:
        out = {
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": named(pairs),
            "queryString": [{"name": "token", "value": url.split("token=")[1]}] if "token=" in url else [],
            "headersSize": -1,
            "bodySize": len(body.encode()) if body else 0,
        }
        if body:
            out["postData"] = {"mimeType": "application/json", "text": body}
        return out

    def response(status: int, reason: str, pairs: Headers, data: bytes) -> Json:
        try:
            body: Json = {"text": data.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"text": b64(data), "encoding": "base64"}
        mime = header(pairs, "content-type") or "application/octet-stream"
        return {
            "status": status,
            "statusText": reason,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": named(pairs),
            "content": {"mimeType": mime, "size": len(data), **body},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(data),
        }

    def asset(path: str, mime: str, data: bytes, at_ms: int, dest: str) -> Json:
        navigate = dest == "document"
        block = (
            "Host: localhost:5173\nConnection: keep-alive\n"
            + CHROME_HINTS
            + "User-Agent: {ua}\nAccept: {accept}\nSec-Fetch-Site: {fetch_site}\nSec-Fetch-Mode: {mode}\nSec-Fetch-Dest: {dest}\n"
            + ("" if navigate else f"Referer: {page}\n")
            + tail
        )
        values = {"fetch_site": "none" if navigate else "same-origin", "mode": "navigate" if navigate else "no-cors"}
        asked = heads(block, ua=CHROME_UA, accept=ACCEPT[dest], dest=dest, **values)
        sent = heads(f"Content-Type: {mime}\nContent-Length: {len(data)}\nDate: Mon, 23 Nov 2026 07:02:55 GMT")
        return entry(
            chrome,
            page_start + timedelta(milliseconds=at_ms),
            request("GET", page + path, asked),
            response(200, "OK", sent, data),
            (0.183, 2.961, 0.224),
            3.368,
        )

    def websocket() -> Json:
        asked = heads(
            """
            Host: localhost:5173
            Connection: Upgrade
            Pragma: no-cache
            Cache-Control: no-cache
            User-Agent: {ua}
            Upgrade: websocket
            Origin: http://localhost:5173
            Sec-WebSocket-Version: 13
            Accept-Encoding: gzip, deflate, br, zstd
            Accept-Language: en-IN,en;q=0.9
            Sec-WebSocket-Key: x7JhQ0r1bV3mZc9LwE2tGg==
            Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits
            Sec-WebSocket-Protocol: vite-hmr
            """,
            ua=CHROME_UA,
        )
        sent = heads("""
            Upgrade: websocket
            Connection: Upgrade
            Sec-WebSocket-Accept: 3mQ1lJ8sYbVn0Z4kR6tU2wXc5eA=
            Sec-WebSocket-Protocol: vite-hmr
        """)
        opened = page_start.timestamp() + 0.039
        out = entry(
            chrome,
            page_start + timedelta(milliseconds=39),
            request("GET", "ws://localhost:5173/?token=Wm4pQ2tY7c", asked),
            response(101, "Switching Protocols", sent, b""),
            (0, 1.874, 0),
            21533.402,
        )
        out["_resourceType"] = "websocket"
        out["_webSocketMessages"] = [
            {"type": "receive", "opcode": 1, "data": '{"type":"connected"}', "time": round(opened + 0.002, 6)},
            {
                "type": "send",
                "opcode": 1,
                "data": '{"type":"custom","event":"vite:ping"}',
                "time": round(opened + 21.5, 6),
            },
        ]
        out["_webSocketClose"] = {"code": 1001, "reason": "", "timestamp": round(opened + 21.533, 6)}
        return out

    def cors(call: Recorded, block: str) -> Headers:
        return heads(
            f"Host: {call.host}\nConnection: keep-alive\n{block}\n"
            + "Origin: http://localhost:5173\nSec-Fetch-Site: cross-site\nSec-Fetch-Mode: cors\nSec-Fetch-Dest: empty\n"
            + f"Referer: {page}\n{tail}",
            ua=CHROME_UA,
        )

    def preflight(call: Recorded) -> Json:
        asked = cors(
            call,
            "Accept: */*\nAccess-Control-Request-Method: POST\nAccess-Control-Request-Headers: content-type\nUser-Agent: {ua}",
        )
        return entry(
            chrome,
            call.started - timedelta(milliseconds=4),
            request("OPTIONS", call.url, asked),
            response(204, "No Content", call.server_and_date + PREFLIGHT_ALLOW, b""),
            (0.077, 1.402, 0.109),
            1.588,
        )

    def llm(source: str, call: Recorded, pairs: Headers) -> Json:
        return entry(
            source,
            call.started,
            request("POST", call.url, pairs, call.request_body),
            response(call.status, call.reason, call.response_headers, call.body),
            (call.send, call.wait, call.receive),
            call.time,
        )

    def models() -> Json:
        asked = [(n, v) for n, v in sdk_call.request_headers if n not in ("Content-Type", "Content-Length")]
        sent = [*sdk_call.server_and_date, ("content-type", "application/json"), ("content-length", str(len(MODELS)))]
        started = sdk_call.started - timedelta(milliseconds=212)
        return entry(
            python,
            started,
            request("GET", sdk_call.origin + "/v1/models", asked),
            response(200, "OK", sent, MODELS),
            (0.391, 3.118, 0.207),
            3.716,
        )

    def gone(call: Recorded) -> Json:
        """The client hung up mid-stream: HTTP Toolkit exports the request and no response."""
        nothing = {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": []}
        nothing |= {
            "content": {"size": 0, "mimeType": "application/x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }
        request_ = request("POST", call.url, call.request_headers, call.request_body)
        return entry(
            httpx, call.started, request_, nothing, (call.send, call.wait, 0), call.time
        )  # never sent whole: receive 0

    length = str(len(browser_call.request_body.encode()))
    fetch = cors(
        browser_call,
        f"Content-Length: {length}\n"
        + CHROME_HINTS
        + "User-Agent: {ua}\nContent-Type: application/json\nAccept: text/event-stream",
    )
    pinned = llm(python, sdk_call, sdk_call.request_headers)
    pinned["_pinned"] = True
    entries = [
        asset("", "text/html", PAGE, 0, "document"),
        asset("assets/app.js", "text/javascript", APP_JS, 24, "script"),
        websocket(),
        asset("assets/logo.png", "image/png", LOGO, 55, "image"),
        preflight(browser_call),
        llm(chrome, browser_call, fetch),
        models(),
        pinned,
        gone(aborted),
    ]
    first_seen: dict[str, str] = {}
    for item in entries:  # entries are in time order
        first_seen.setdefault(item["pageref"], item["startedDateTime"])
    pages = [
        {"id": source, "title": source, "startedDateTime": when, "pageTimings": {}}
        for source, when in first_seen.items()
    ]
    creator = {"name": "HTTP Toolkit", "version": "cc63e76611317e1b12bef25d3362decabde57640"}
    return {"log": {"version": "1.2", "creator": creator, "pages": pages, "entries": entries, "_tlsErrors": []}}


BUILDERS = {
    "chrome-devtools-shape.har": (chrome_devtools, 2),
    "firefox-devtools-shape.har": (firefox_devtools, 2),
    "charles-shape.har": (charles, 2),
    "httptoolkit-shape.har": (httptoolkit, None),
}


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (build, indent) in BUILDERS.items():
        (out / name).write_bytes(dump(build(), indent))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
