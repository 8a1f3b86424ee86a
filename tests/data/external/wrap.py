"""Write every recorded exchange in tests/data/external in each input format chatcap reads.

    python tests/data/external/wrap.py OUT_DIR

For each `<source>/<name>.exchange.json` (with its `<name>.response.*` body, kept byte for
byte as recorded) this writes, under OUT_DIR, one file per format, each holding exactly
that one exchange:

    har/<source>__<name>.har        a HAR 1.2 log with one entry (`content.text`)
    jsonl/<source>__<name>.jsonl    one chatcap/1 capture line (a HAR entry)
    dump/<source>__<name>.json      a `{request, response}` JSON dump
    http/<source>__<name>.http      raw HTTP/1.1 text: request, then response (Content-Length)
    body/<source>__<name>.<ext>     the bare response body
    flows/<source>__<name>.mitm     a mitmproxy flow file (only when mitmproxy is installed)

The recordings carry no timing, so every format states the same fixed start time and no
per-read times. Nothing here comes from `analyzer`: the files are what another tool would write.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
STARTED = "2025-01-01T00:00:00.000Z"
STARTED_EPOCH = 1735689600.0
FORMATS = ("har", "jsonl", "dump", "http", "body", "flows")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}


def exchanges(root: Path = HERE) -> list[tuple[str, dict[str, Any], bytes]]:
    """Every recorded exchange: (id, its exchange.json, the response body bytes), by id."""
    found = []
    for meta_path in sorted(root.glob("*/*.exchange.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        body = (meta_path.parent / meta["response"]["body_file"]).read_bytes()
        found.append((f"{meta_path.parent.name}__{meta_path.name.removesuffix('.exchange.json')}", meta, body))
    return found


def _request_headers(request: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [("Host", urlsplit(request["url"]).netloc)]
    headers += [(name, value) for name, value in request["headers"].items()]
    if request.get("body") is not None:
        headers.append(("Content-Length", str(len(request["body"].encode("utf-8")))))
    return headers


def _response_headers(response: dict[str, Any], body: bytes) -> list[tuple[str, str]]:
    return [*response["headers"].items(), ("Content-Length", str(len(body)))]


def _har_headers(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def _content(body: bytes, mime: str) -> dict[str, Any]:
    try:
        return {"size": len(body), "mimeType": mime, "text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"size": len(body), "mimeType": mime, "text": base64.b64encode(body).decode(), "encoding": "base64"}


def har_entry(meta: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The exchange as one HAR 1.2 entry."""
    request, response = meta["request"], meta["response"]
    url = urlsplit(request["url"])
    har_request: dict[str, Any] = {
        "method": request["method"],
        "url": request["url"],
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _har_headers(_request_headers(request)),
        "queryString": [{"name": k, "value": v} for k, _, v in (p.partition("=") for p in url.query.split("&") if p)],
        "headersSize": -1,
        "bodySize": len(request["body"].encode("utf-8")) if request.get("body") is not None else 0,
    }
    if request.get("body") is not None:
        har_request["postData"] = {"mimeType": request["headers"].get("content-type", ""), "text": request["body"]}
    mime = response["headers"].get("content-type", "")
    return {
        "startedDateTime": STARTED,
        "time": 0,
        "request": har_request,
        "response": {
            "status": response["status"],
            "statusText": REASONS.get(response["status"], ""),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _har_headers(_response_headers(response, body)),
            "content": _content(body, mime),
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
    }


def har(meta: dict[str, Any], body: bytes) -> bytes:
    log = {
        "log": {"version": "1.2", "creator": {"name": "wrap.py", "version": "1"}, "entries": [har_entry(meta, body)]}
    }
    return json.dumps(log, ensure_ascii=False, indent=1).encode("utf-8")


def jsonl(meta: dict[str, Any], body: bytes) -> bytes:
    entry = har_entry(meta, body)
    entry["_chatcap"] = {"schema": "chatcap/1", "version": "external", "redacted": [], "complete": True}
    return json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n"


def dump(meta: dict[str, Any], body: bytes) -> bytes:
    request, response = meta["request"], meta["response"]
    pair = {
        "request": {
            "method": request["method"],
            "url": request["url"],
            "headers": request["headers"],
            "body": request["body"],
        },
        "response": {"status": response["status"], "headers": response["headers"], "body": body.decode("utf-8")},
    }
    return json.dumps(pair, ensure_ascii=False, indent=2).encode("utf-8")


def http(meta: dict[str, Any], body: bytes) -> bytes:
    request, response = meta["request"], meta["response"]
    url = urlsplit(request["url"])
    target = url.path + (f"?{url.query}" if url.query else "")
    lines = [f"{request['method']} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in _request_headers(request)]
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (request.get("body") or "").encode("utf-8")
    status = f"HTTP/1.1 {response['status']} {REASONS.get(response['status'], '')}".rstrip()
    lines = [status] + [f"{k}: {v}" for k, v in _response_headers(response, body)]
    return out + b"\r\n\r\n" + ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def flows(meta: dict[str, Any], body: bytes) -> bytes | None:
    """A mitmproxy flow file holding the exchange, or None without mitmproxy."""
    try:
        import io

        from mitmproxy import connection
        from mitmproxy import http as mhttp
        from mitmproxy import io as mio
    except ImportError:
        return None
    request, response = meta["request"], meta["response"]
    url = urlsplit(request["url"])
    port = url.port or (443 if url.scheme == "https" else 80)
    client = connection.Client(
        peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080), timestamp_start=STARTED_EPOCH
    )
    server = connection.Server(address=(url.hostname, port))
    req = mhttp.Request.make(
        request["method"], request["url"], (request.get("body") or "").encode("utf-8"), dict(_request_headers(request))
    )
    req.timestamp_start = req.timestamp_end = STARTED_EPOCH
    resp = mhttp.Response.make(response["status"], body, dict(_response_headers(response, body)))
    resp.timestamp_start = resp.timestamp_end = STARTED_EPOCH
    flow = mhttp.HTTPFlow(client, server)
    flow.request, flow.response = req, resp
    out = io.BytesIO()
    mio.FlowWriter(out).add(flow)
    return out.getvalue()


def write_all(out_dir: Path, root: Path = HERE) -> dict[str, list[Path]]:
    """Write every exchange in every format; returns the files written, per format."""
    written: dict[str, list[Path]] = {name: [] for name in FORMATS}
    for exchange_id, meta, body in exchanges(root):
        ext = meta["response"]["body_file"].rsplit(".", 1)[-1]
        outputs = {
            "har": (f"{exchange_id}.har", har(meta, body)),
            "jsonl": (f"{exchange_id}.jsonl", jsonl(meta, body)),
            "dump": (f"{exchange_id}.json", dump(meta, body)),
            "http": (f"{exchange_id}.http", http(meta, body)),
            "body": (f"{exchange_id}.{ext}", body),
            "flows": (f"{exchange_id}.mitm", flows(meta, body)),
        }
        for fmt, (name, data) in outputs.items():
            if data is None:
                continue
            path = out_dir / fmt / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written[fmt].append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for fmt, paths in write_all(Path(sys.argv[1])).items():
        print(f"{fmt}: {len(paths)} files")
