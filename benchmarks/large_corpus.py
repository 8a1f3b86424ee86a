"""Large inputs for benchmarks/large_inputs.py: a browser's HAR file, a chatcap capture and a HAR of LLM calls.

All three are written incrementally (one entry or line at a time, never the whole file in memory),
deterministically from a seed, and cached in benchmarks/data/ keyed by generator version, seed
and size. A file is at least the size asked for and at most one entry larger.

- `har(size, seed)`: what a browser's "Save all as HAR" writes after a long session on a web
  chat app: HAR 1.2, pretty-printed, mostly page assets (scripts, stylesheets, HTML and JSON
  as text; images and fonts base64-encoded; 1 kB–2 MB, a few 304s and beacons without a body),
  each with the ~18 request and ~12 response headers a browser records, plus `llm_calls` POSTs to
  https://api.example.test/v1/chat/completions whose JSON request has `messages` and whose
  `text/event-stream` response is a stream of chat.completion.chunk events ending in
  `data: [DONE]` (from `corpus.exchange_body`, the reconstruction benchmark's generator).
- `jsonl(size, seed)`: what `addons/chatcap.py` writes (`chatcap/1`, as in
  captures/replayed/*.jsonl): one HAR entry per line, each an LLM call with its request (a
  conversation history, sometimes tools), the streamed response, `response._chunks` (each
  network read's arrival time and end offset) and `_chatcap`; 2 % are HTTP 429s with a JSON
  error body and 1 % streams the client abandoned midway.
- `api_har(size, seed)`: the same LLM calls as one HAR file, every entry an LLM call, indented
  as `chatcap convert --to har` writes it (mitmproxy's HAR export of an API client's session
  looks the same but for chatcap's `_` fields).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import os
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import corpus
import orjson

DATA = corpus.DATA
GENERATOR_VERSION = 1  # bump when the output changes: old cache files are then ignored
HAR_LLM_CALLS = 300
LLM_URL = "https://api.example.test/v1/chat/completions"
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@dataclass(slots=True, frozen=True)
class LargeFile:
    path: Path
    kind: str  # "har", "api-har" or "jsonl"
    size: int  # bytes on disk
    entries: int  # HAR entries or JSONL lines
    llm_calls: int
    cached: bool  # found in the cache rather than written now


def har(size: int, seed: int = 1, llm_calls: int = HAR_LLM_CALLS) -> LargeFile:
    """A browser HAR file of at least `size` bytes with `llm_calls` LLM API calls among its assets."""
    path = DATA / f"large-v{GENERATOR_VERSION}-browser-seed{seed}-{size}B-{llm_calls}llm.har"
    return _cached(path, "har", lambda handle: _write_har(handle, size, seed, llm_calls))


def jsonl(size: int, seed: int = 1) -> LargeFile:
    """A chatcap/1 capture of at least `size` bytes, one LLM call per line."""
    path = DATA / f"large-v{GENERATOR_VERSION}-capture-seed{seed}-{size}B.jsonl"
    return _cached(path, "jsonl", lambda handle: _write_jsonl(handle, size, seed))


def api_har(size: int, seed: int = 1) -> LargeFile:
    """A HAR file of at least `size` bytes in which every entry is an LLM call: the capture's lines, converted."""
    path = DATA / f"large-v{GENERATOR_VERSION}-api-seed{seed}-{size}B.har"
    return _cached(path, "api-har", lambda handle: _write_api_har(handle, size, seed))


def _cached(path: Path, kind: str, write: Callable[[Any], tuple[int, int]]) -> LargeFile:
    counts = path.with_name(path.name + ".counts")  # entries and LLM calls, so a cached file needs no scan
    if path.exists() and counts.exists():
        entries, llm_calls = map(int, counts.read_text().split())
        return LargeFile(path, kind, path.stat().st_size, entries, llm_calls, cached=True)
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb", buffering=1 << 20) as handle:
        entries, llm_calls = write(handle)
        handle.flush()
        os.fsync(handle.fileno())  # on disk now, not written back while the first peers run
    partial.rename(path)  # a killed run leaves no half-written cache behind
    counts.write_text(f"{entries} {llm_calls}\n")
    return LargeFile(path, kind, path.stat().st_size, entries, llm_calls, cached=False)


# Text and bytes to cut bodies from: built once per file from the seed, sliced at random offsets.


class _Pools:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.prose = self._prose(1 << 20)
        self.code = self._code(4 << 20)
        self.binary = rng.randbytes(8 << 20)

    def _prose(self, length: int) -> str:
        rng, words, size = self.rng, [], 0
        while size < length:
            roll = rng.random()
            word = rng.choice(corpus.CJK) if roll < 0.08 else rng.choice(corpus.PUNCTUATION) if roll < 0.18 else " " + rng.choice(corpus.ENGLISH)  # fmt: skip
            words.append(word)
            size += len(word)
        return "".join(words)

    def _code(self, length: int) -> str:
        """Minified-JavaScript-like and CSS-like text: identifiers, strings with quotes, braces, newlines."""
        rng, parts, size = self.rng, [], 0
        names = ["".join(rng.choices(string.ascii_letters, k=rng.randint(1, 9))) for _ in range(400)]
        while size < length:
            a, b, c = rng.choice(names), rng.choice(names), rng.choice(names)
            roll = rng.random()
            if roll < 0.5:
                part = f'function {a}({b},{c}){{var t={b}.{c}||"{rng.choice(corpus.ENGLISH)}";return t+{c}.length}}'
            elif roll < 0.75:
                part = f'{a}.prototype.{b}=function(){{return this.{c}?"\\u00e9{a}":null}};'
            elif roll < 0.9:
                part = f".{a}-{b}{{margin:{rng.randint(0, 40)}px;color:#{rng.getrandbits(24):06x}}}"
            else:
                part = "\n"
            parts.append(part)
            size += len(part)
        return "".join(parts)

    def text(self, pool: str, length: int) -> str:
        if length >= len(pool):
            return (pool * (length // len(pool) + 1))[:length]
        start = self.rng.randrange(len(pool) - length)
        return pool[start : start + length]

    def blob(self, length: int) -> bytes:
        if length >= len(self.binary):
            return (self.binary * (length // len(self.binary) + 1))[:length]
        start = self.rng.randrange(len(self.binary) - length)
        return self.binary[start : start + length]


def _size(rng: random.Random, median: float, low: int, high: int) -> int:
    return max(low, min(high, round(rng.lognormvariate(math.log(median), 1.0))))


def _headers(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _http_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


# The LLM call: request, streamed response and reads, shared by both files.


@dataclass(slots=True)
class _Call:
    request_body: bytes
    model: str
    body: bytes  # the SSE response
    event_ends: list[int]


def _llm_call(rng: random.Random, pools: _Pools, n: int) -> _Call:
    kind = rng.choices(list(corpus.MAIN_MIX), list(corpus.MAIN_MIX.values()))[0]
    body = corpus.exchange_body(rng, n, kind)
    model = orjson.loads(body[6 : body.index(b"\n\n")])["model"]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": pools.text(pools.prose, _size(rng, 400, 40, 20_000))}
    ]
    for turn in range(rng.choices((0, 1, 2, 4, 8, 16), weights=(30, 20, 20, 15, 10, 5))[0]):
        messages.append({"role": "user", "content": pools.text(pools.prose, _size(rng, 200, 5, 8000))})
        messages.append({"role": "assistant", "content": pools.text(pools.prose, _size(rng, 900, 20, 12_000))})
        if turn > 0 and rng.random() < 0.05:  # a pasted document
            messages[-2]["content"] += pools.text(pools.prose, _size(rng, 30_000, 5000, 200_000))
    messages.append({"role": "user", "content": pools.text(pools.prose, _size(rng, 200, 5, 8000))})
    request: dict[str, Any] = {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    if kind == "tools":
        request["tools"] = [
            {"type": "function", "function": {"name": name, "description": pools.text(pools.prose, 120),
             "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
            for name in corpus.TOOLS
        ]  # fmt: skip
    ends, end = [], 0
    for event in body.split(b"\n\n")[:-1]:
        end += len(event) + 2
        ends.append(end)
    return _Call(orjson.dumps(request), model, body, ends)


def network_reads(rng: random.Random, event_ends: list[int], stalls: bool = True) -> list[list[float | int]]:
    """Network reads as the addon records them ([time, end offset]) for a body whose events end at
    `event_ends`: 1–3 events per read, a wait, jittered gaps, and (with `stalls`) the odd stall."""
    found, t, i = [], rng.uniform(150.0, 900.0), 0
    while i < len(event_ends):
        i = min(len(event_ends), i + rng.choices((1, 2, 3), weights=(70, 20, 10))[0])
        found.append([round(t, 3), event_ends[i - 1]])
        t += rng.uniform(800.0, 2000.0) if stalls and rng.random() <= 0.003 else rng.uniform(2.0, 60.0)
    return found


# The browser's HAR file.

_ASSETS = [  # resource type, MIME type, median size, text or binary, share
    ("script", "application/javascript", 40_000, "text", 24),
    ("stylesheet", "text/css", 20_000, "text", 8),
    ("document", "text/html; charset=utf-8", 30_000, "text", 4),
    ("fetch", "application/json", 6_000, "text", 14),
    ("image", "image/png", 30_000, "binary", 22),
    ("image", "image/jpeg", 80_000, "binary", 14),
    ("image", "image/webp", 25_000, "binary", 8),
    ("font", "font/woff2", 45_000, "binary", 6),
]
_ASSET_WEIGHTS = [share for *_, share in _ASSETS]
_CDN = [
    "https://chat.example.test",
    "https://cdn.example.test",
    "https://static.example.test",
    "https://img.example.test",
]
_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def _browser_request(
    rng: random.Random, method: str, url: str, accept: str, extra: list[tuple[str, str]]
) -> dict[str, Any]:
    origin = url.split("/", 3)
    headers = [
        (":authority", origin[2]), (":method", method), (":path", "/" + origin[3]), (":scheme", "https"),
        ("accept", accept), ("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", "en-GB,en;q=0.9"),
        ("cookie", f"session={rng.getrandbits(128):032x}; theme=dark"), ("priority", "u=1, i"),
        ("referer", "https://chat.example.test/c/" + f"{rng.getrandbits(64):016x}"),
        ("sec-ch-ua", '"Chromium";v="131", "Not_A Brand";v="24"'), ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", '"Linux"'), ("sec-fetch-dest", "empty"), ("sec-fetch-mode", "cors"),
        ("sec-fetch-site", "same-site"), ("user-agent", _UA), *extra,
    ]  # fmt: skip
    query = [{"name": "v", "value": f"{rng.getrandbits(32):08x}"}] if "?" in url else []
    return {"method": method, "url": url, "httpVersion": "http/2.0", "headers": _headers(headers),
            "queryString": query, "cookies": [], "headersSize": -1, "bodySize": 0}  # fmt: skip


def _browser_response(
    rng: random.Random, status: int, mime: str, length: int, moment: datetime, extra: list[tuple[str, str]]
) -> dict[str, Any]:
    headers = [
        ("access-control-allow-origin", "https://chat.example.test"), ("alt-svc", 'h3=":443"; ma=86400'),
        ("cache-control", "public, max-age=31536000, immutable" if status != 200 or "json" not in mime else "no-store"),
        ("cf-ray", f"{rng.getrandbits(64):016x}-AMS"), ("content-type", mime),
        ("date", _http_date(moment)), ("etag", f'"{length:x}-{moment.microsecond:x}"'), ("server", "cloudflare"),
        ("strict-transport-security", "max-age=31536000; includeSubDomains"), ("vary", "Accept-Encoding"),
        ("x-content-type-options", "nosniff"), *extra,
    ]  # fmt: skip
    return {"status": status, "statusText": "", "httpVersion": "http/2.0", "headers": _headers(headers),
            "cookies": [], "content": {"size": length, "mimeType": mime}, "redirectURL": "",
            "headersSize": -1, "bodySize": -1, "_transferSize": length + 600, "_error": None}  # fmt: skip


def _timings(rng: random.Random, wait: float, receive: float) -> dict[str, float]:
    return {"blocked": round(rng.uniform(0.5, 30), 3), "dns": -1, "ssl": -1, "connect": -1,
            "send": round(rng.uniform(0.05, 0.5), 3), "wait": round(wait, 3), "receive": round(receive, 3),
            "_blocked_queueing": round(rng.uniform(0.2, 5), 3)}  # fmt: skip


def _asset_entry(rng: random.Random, pools: _Pools, n: int, moment: datetime) -> dict[str, Any]:
    resource, mime, median, encoding, _ = rng.choices(_ASSETS, _ASSET_WEIGHTS)[0]
    suffix = {"script": "js", "stylesheet": "css", "document": "html", "fetch": "json"}.get(
        resource, mime.split("/")[1]
    )
    url = f"{rng.choice(_CDN)}/assets/{resource}-{rng.getrandbits(48):012x}.{suffix}?v=1"
    roll = rng.random()
    if roll < 0.04:  # revalidated from the cache: no body
        status, length, text = 304, 0, None
    elif roll < 0.06:  # an analytics beacon
        url, mime, status, length, text = "https://telemetry.example.test/collect", "text/plain", 204, 0, None
    else:
        status, length = 200, _size(rng, median, 1000, 2_000_000)
        if encoding == "text":
            text = pools.text(pools.code, length)
        else:
            text = base64.b64encode(pools.blob(length)).decode("ascii")
    method = "POST" if status == 204 else "GET"
    request = _browser_request(rng, method, url, "*/*", [("x-request-id", f"{n:08x}")])
    if method == "POST":
        beacon = f'{{"event":"view","n":{n}}}'
        request["postData"] = {"mimeType": "text/plain;charset=UTF-8", "text": beacon}
        request["bodySize"] = len(beacon)
    response = _browser_response(rng, status, mime, length, moment, [("content-length", str(length))])
    if text is not None:
        response["content"]["text"] = text
        if encoding == "binary":
            response["content"]["encoding"] = "base64"
    wait = rng.uniform(5, 120)
    entry = {"startedDateTime": _iso(moment), "time": 0.0, "request": request, "response": response, "cache": {},
             "timings": _timings(rng, wait, length / 20_000), "serverIPAddress": "203.0.113.10",
             "_initiator": {"type": "parser"}, "_priority": "Low", "_resourceType": resource,
             "connection": str(1000 + n % 40), "pageref": "page_1"}  # fmt: skip
    entry["time"] = round(sum(v for v in entry["timings"].values() if v > 0), 3)
    return entry


def _har_llm_entry(rng: random.Random, pools: _Pools, n: int, moment: datetime) -> dict[str, Any]:
    call = _llm_call(rng, pools, n)
    request = _browser_request(rng, "POST", LLM_URL, "text/event-stream", [
        ("authorization", f"Bearer sk-example-{rng.getrandbits(128):032x}"), ("content-type", "application/json"),
        ("content-length", str(len(call.request_body))), ("origin", "https://chat.example.test"),
    ])  # fmt: skip
    request["postData"] = {"mimeType": "application/json", "text": call.request_body.decode()}
    request["bodySize"] = len(call.request_body)
    response = _browser_response(rng, 200, "text/event-stream", len(call.body), moment, [
        ("openai-model", call.model), ("openai-processing-ms", str(rng.randint(100, 900))),
        ("x-request-id", f"req_{rng.getrandbits(96):024x}"),
    ])  # fmt: skip
    response["content"] = {"size": len(call.body), "mimeType": "text/event-stream", "text": call.body.decode()}
    reads = network_reads(rng, call.event_ends)
    entry = {"startedDateTime": _iso(moment), "time": 0.0, "request": request, "response": response, "cache": {},
             "timings": _timings(rng, reads[0][0], reads[-1][0] - reads[0][0]), "serverIPAddress": "203.0.113.7",
             "_initiator": {"type": "script"}, "_priority": "High", "_resourceType": "fetch",
             "connection": "2001", "pageref": "page_1"}  # fmt: skip
    entry["time"] = round(sum(v for v in entry["timings"].values() if v > 0), 3)
    return entry


def _write_har(handle: Any, size: int, seed: int, llm_calls: int) -> tuple[int, int]:
    rng = random.Random(seed)
    pools = _Pools(rng)
    head = {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [{"startedDateTime": _iso(START), "id": "page_1", "title": "https://chat.example.test/",
                       "pageTimings": {"onContentLoad": 812.4, "onLoad": 1530.9}}]}  # fmt: skip
    opening = orjson.dumps({"log": head}, option=orjson.OPT_INDENT_2).removesuffix(b"\n  }\n}") + b',\n    "entries": ['
    handle.write(opening)
    written, entries, calls, moment = len(opening), 0, 0, START
    closing = b"\n    ]\n  }\n}\n"
    while written + len(closing) < size or calls < llm_calls:
        moment += timedelta(milliseconds=rng.uniform(5, 900))
        due = calls < llm_calls and written >= size * (calls + 0.5) / llm_calls
        entry = _har_llm_entry(rng, pools, calls, moment) if due else _asset_entry(rng, pools, entries, moment)
        calls += due
        text = orjson.dumps(entry, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n      ")
        piece = (b",\n      " if entries else b"\n      ") + text
        handle.write(piece)
        written += len(piece)
        entries += 1
    handle.write(closing)
    return entries, calls


# The chatcap capture.

_HOSTS = {"gpt": "https://api.openai.com", "deepseek": "https://api.deepseek.com"}
_CLIENTS = [("OpenAI/Python 1.109.1", "python"), ("OpenAI/JS 5.23.2", "js"), ("AsyncOpenAI/Python 2.54.0", "python")]


def _capture_line(rng: random.Random, pools: _Pools, n: int, moment: datetime) -> dict[str, Any]:
    call = _llm_call(rng, pools, n)
    host = next((url for prefix, url in _HOSTS.items() if call.model.startswith(prefix)), "http://10.0.0.12:8000")
    agent, lang = rng.choice(_CLIENTS)
    key_hash = hashlib.sha256(b"sk-example-%d" % rng.randrange(8)).hexdigest()[:8]  # a few synthetic keys
    request_headers = [
        ("Host", host.split("//")[1]), ("Accept-Encoding", "gzip, deflate, br, zstd"), ("Connection", "keep-alive"),
        ("Authorization", f"<redacted:{key_hash}>"), ("Accept", "application/json"),
        ("Content-Type", "application/json"), ("User-Agent", agent), ("X-Stainless-Lang", lang),
        ("X-Stainless-Package-Version", agent.rsplit(" ", 1)[-1]), ("X-Stainless-OS", "Linux"),
        ("X-Stainless-Arch", "x64"), ("X-Stainless-Runtime", "CPython" if lang == "python" else "node"),
        ("X-Stainless-Async", "false"), ("x-stainless-retry-count", "0"), ("x-stainless-read-timeout", "600"),
        ("Content-Length", str(len(call.request_body))),
    ]  # fmt: skip
    request = {"method": "POST", "url": host + "/v1/chat/completions", "httpVersion": "HTTP/1.1",
               "headers": _headers(request_headers), "queryString": [], "cookies": [], "headersSize": -1,
               "bodySize": len(call.request_body),
               "postData": {"mimeType": "application/json", "text": call.request_body.decode()}}  # fmt: skip
    roll = rng.random()
    meta: dict[str, Any] = {"schema": "chatcap/1", "version": "0.1.0", "redacted": ["Authorization"], "complete": True}
    if roll < 0.02:  # rate limited
        status, mime = 429, "application/json"
        body = orjson.dumps({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                       "param": None, "code": "rate_limit_exceeded"}}, option=orjson.OPT_INDENT_2)  # fmt: skip
        reads: list[list[float | int]] = [[round(rng.uniform(20, 200), 3), len(body)]]
        extra = [("retry-after", str(rng.randint(1, 30))), ("content-length", str(len(body)))]
    else:
        status, mime, body = 200, "text/event-stream", call.body
        reads = network_reads(rng, call.event_ends)
        extra = [("transfer-encoding", "chunked"), ("x-request-id", f"req_{rng.getrandbits(96):024x}")]
        if roll < 0.03 and len(reads) > 4:  # the client stopped reading
            reads = reads[: len(reads) // 2]
            body = body[: int(reads[-1][1])]
            meta["complete"] = False
    response_headers = [("Server", "uvicorn" if host.startswith("http:") else "cloudflare"),
                        ("Date", _http_date(moment)), ("content-type", mime), *extra,
                        ("access-control-allow-origin", "*")]  # fmt: skip
    response = {"status": status, "statusText": "OK" if status == 200 else "Too Many Requests",
                "httpVersion": "HTTP/1.1", "headers": _headers(response_headers), "cookies": [],
                "content": {"size": len(body), "mimeType": mime, "text": body.decode("utf-8", "replace")},
                "redirectURL": "", "headersSize": -1, "bodySize": len(body), "_chunks": reads}  # fmt: skip
    line: dict[str, Any] = {"startedDateTime": _iso(moment), "time": round(float(reads[-1][0]) + 1, 3),
                            "request": request, "response": response, "cache": {},
                            "timings": {"send": round(rng.uniform(0.2, 2), 3), "wait": reads[0][0],
                                        "receive": round(float(reads[-1][0]) - float(reads[0][0]), 3)}}  # fmt: skip
    if not meta["complete"]:
        line["_error"] = "client disconnected"
    line["_chatcap"] = meta
    return line


def _capture_lines(seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    pools = _Pools(rng)
    moment = START
    for n in itertools.count():
        moment += timedelta(milliseconds=rng.uniform(500, 30_000))
        yield _capture_line(rng, pools, n, moment)


def _write_jsonl(handle: Any, size: int, seed: int) -> tuple[int, int]:
    written, lines = 0, 0
    for entry in _capture_lines(seed):
        if written >= size:
            break
        line = orjson.dumps(entry) + b"\n"
        handle.write(line)
        written += len(line)
        lines += 1
    return lines, lines


def _write_api_har(handle: Any, size: int, seed: int) -> tuple[int, int]:
    """The capture's lines as `chatcap convert --to har` writes them: one indented HAR 1.2 file."""
    head = {"version": "1.2", "creator": {"name": "chatcap", "version": "0.1.0"}, "pages": []}
    opening = orjson.dumps({"log": head}, option=orjson.OPT_INDENT_2).removesuffix(b"\n  }\n}") + b',\n    "entries": ['
    handle.write(opening)
    written, entries = len(opening), 0
    closing = b"\n    ]\n  }\n}\n"
    for entry in _capture_lines(seed):
        if written + len(closing) >= size:
            break
        text = orjson.dumps(entry, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n      ")
        piece = (b",\n      " if entries else b"\n      ") + text
        handle.write(piece)
        written += len(piece)
        entries += 1
    handle.write(closing)
    return entries, entries
