"""Write the small input-format fixtures under tests/data/ingest/ (synthetic content).

Run from the repository root: `python tests/data/make_ingest_fixtures.py`. The output is
deterministic; review the diff after changing this file.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "ingest"

REQUEST_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}], "stream": True}
CHUNKS = [
    {"id": "chatcmpl-fx1", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {"id": "chatcmpl-fx1", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
    {"id": "chatcmpl-fx1", "object": "chat.completion.chunk", "created": 1700000001, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {"content": " there — 你好!"}, "finish_reason": None}]},
    {"id": "chatcmpl-fx1", "object": "chat.completion.chunk", "created": 1700000001, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
     "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}},
]  # fmt: skip


def sse_body(chunks: list[dict], line_end: str = "\n") -> bytes:
    events = [f"data: {json.dumps(c, ensure_ascii=False, separators=(',', ':'))}" for c in chunks] + ["data: [DONE]"]
    return "".join(e + line_end + line_end for e in events).encode()


def framed(body: bytes, sizes: list[int]) -> bytes:
    """Transfer-Encoding: chunked framing of `body` in pieces of the given sizes."""
    out, pos = b"", 0
    for size in sizes:
        piece = body[pos : pos + size]
        if not piece:
            break
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        pos += len(piece)
    if pos < len(body):
        out += f"{len(body) - pos:x}\r\n".encode() + body[pos:] + b"\r\n"
    return out + b"0\r\n\r\n"


def raw_request(body: bytes) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer sk-fixture0000000000000000000000\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    request = json.dumps(REQUEST_BODY, separators=(",", ":")).encode()
    body = sse_body(CHUNKS, "\r\n")

    # Raw HTTP whose response body still carries its chunked framing; one frame splits "你".
    split_at = body.index("你".encode()) + 1
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + framed(
        body, [split_at, 40, 300]
    )
    (OUT / "raw_http_chunked_framed.txt").write_bytes(raw_request(request) + b"\r\n\r\n" + response)

    # Two exchanges pasted one after the other; the second is a non-streaming answer.
    second_request = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Again"}]}).encode()
    completion = {
        "id": "chatcmpl-fx2", "object": "chat.completion", "created": 1700000100, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi again."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11},
    }  # fmt: skip
    second_response = json.dumps(completion).encode()
    (OUT / "raw_http_two_exchanges.txt").write_bytes(
        raw_request(request)
        + b"\n\nHTTP/1.1 200 OK\nContent-Type: text/event-stream\n\n"
        + sse_body(CHUNKS)
        + raw_request(second_request)
        + b"\n\nHTTP/1.1 200 OK\nContent-Type: application/json\n"
        + f"Content-Length: {len(second_response)}\n\n".encode()
        + second_response
        + b"\n"
    )

    # A {request, response} dump in the other common shapes: header lists, a parsed body, statusCode.
    (OUT / "dump_variant_shapes.json").write_text(
        json.dumps(
            {
                "request": {
                    "method": "POST",
                    "url": "https://api.example.test/v1/chat/completions",
                    "headers": [{"name": "Content-Type", "value": "application/json"}],
                    "body": REQUEST_BODY,
                },
                "response": {
                    "statusCode": 200,
                    "headers": [["content-type", "text/event-stream"]],
                    "body": sse_body(CHUNKS).decode(),
                },
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )

    # A HAR 1.2 file whose response body is still gzip-compressed, base64 in content.text.
    compressed = gzip.compress(sse_body(CHUNKS), mtime=0)
    har = {
        "log": {
            "version": "1.2",
            "creator": {"name": "chatcap fixture", "version": "1"},
            "entries": [
                {
                    "startedDateTime": "2025-01-02T03:04:05.000Z",
                    "time": 812.5,
                    "request": {
                        "method": "POST",
                        "url": "https://api.example.test/v1/chat/completions",
                        "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "content-type", "value": "application/json"}],
                        "queryString": [],
                        "cookies": [],
                        "headersSize": -1,
                        "bodySize": len(request),
                        "postData": {"mimeType": "application/json", "text": request.decode()},
                    },
                    "response": {
                        "status": 200,
                        "statusText": "OK",
                        "httpVersion": "HTTP/1.1",
                        "headers": [
                            {"name": "content-type", "value": "text/event-stream"},
                            {"name": "content-encoding", "value": "gzip"},
                        ],
                        "cookies": [],
                        "content": {
                            "size": len(compressed),
                            "mimeType": "text/event-stream",
                            "text": base64.b64encode(compressed).decode(),
                            "encoding": "base64",
                        },
                        "redirectURL": "",
                        "headersSize": -1,
                        "bodySize": len(compressed),
                    },
                    "cache": {},
                    "timings": {"send": 0.5, "wait": 420.0, "receive": 392.0},
                }
            ],
        }
    }
    (OUT / "gzip_body.har").write_text(json.dumps(har, indent=1), encoding="utf-8")

    # A browser's "Save all as HAR": page, script, image, the CORS preflight, the chat call,
    # and an event stream with `choices` on a path no rule names. Two are LLM calls.
    def plain(method: str, url: str, mime: str, text: str) -> dict:
        return {
            "startedDateTime": "2025-01-02T03:04:00.000Z", "time": 12.0,
            "request": {"method": method, "url": url, "httpVersion": "HTTP/2", "headers": [], "queryString": [],
                        "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200 if method != "OPTIONS" else 204, "statusText": "", "httpVersion": "HTTP/2",
                         "headers": [{"name": "content-type", "value": mime}], "cookies": [],
                         "content": {"size": len(text), "mimeType": mime, "text": text}, "redirectURL": "",
                         "headersSize": -1, "bodySize": len(text)},
            "cache": {}, "timings": {"send": 0.1, "wait": 10.0, "receive": 1.9},
        }  # fmt: skip

    stream_entry = json.loads(json.dumps(har["log"]["entries"][0]))
    stream_entry["request"]["url"] = "https://chat.example.test/api/conversation"
    stream_entry["request"]["postData"] = {"mimeType": "application/json", "text": '{"prompt": "hi"}'}
    browser = {"log": {"version": "1.2", "creator": {"name": "chatcap fixture (Chrome DevTools shape)", "version": "1"},
                       "entries": [
                           plain("GET", "https://chat.example.test/", "text/html", "<html></html>"),
                           plain("GET", "https://chat.example.test/app.js", "text/javascript", "console.log(1)"),
                           plain("GET", "https://chat.example.test/logo.png", "image/png", ""),
                           plain("OPTIONS", "https://api.example.test/v1/chat/completions", "text/plain", ""),
                           har["log"]["entries"][0],
                           stream_entry,
                       ]}}  # fmt: skip
    (OUT / "browser_mixed.har").write_text(json.dumps(browser, indent=1), encoding="utf-8")

    # Bare bodies: a 429 error object and a non-streaming completion.
    error = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    (OUT / "error_body.json").write_text(json.dumps(error), encoding="utf-8")
    (OUT / "completion_body.json").write_text(json.dumps(completion), encoding="utf-8")

    # A stream with one chunk that is not JSON in the middle, and one cut off mid-answer.
    broken = sse_body(CHUNKS).replace(
        b'data: {"id":"chatcmpl-fx1","object":"chat.completion.chunk","created":1700000001',
        b'data: {"id":"chatcmpl-fx1",,"created":1700000001',
        1,
    )
    (OUT / "stream_one_bad_chunk.txt").write_bytes(broken)
    # Cut inside the third event: two whole chunks, then half a line.
    (OUT / "stream_cut_off.txt").write_bytes(sse_body(CHUNKS)[:420])

    # A capture JSONL whose last line was torn by a killed writer.
    entry = json.loads(json.dumps(har["log"]["entries"][0]))
    entry["response"]["content"] = {
        "size": len(sse_body(CHUNKS)),
        "mimeType": "text/event-stream",
        "text": sse_body(CHUNKS).decode(),
    }
    entry["response"]["headers"] = [{"name": "content-type", "value": "text/event-stream"}]
    entry["_chatcap"] = {"schema": "chatcap/1", "version": "0.1.0", "redacted": [], "complete": True}
    line = json.dumps(entry, ensure_ascii=False)
    (OUT / "torn_last_line.jsonl").write_text(line + "\n" + line + "\n" + line[: len(line) // 2], encoding="utf-8")


if __name__ == "__main__":
    main()
