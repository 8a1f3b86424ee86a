"""Request/response pairs given as JSON: HAR 1.2 entries (chatcap/1 capture lines are
HAR entries) and the looser `{"request": {...}, "response": {...}}` dumps people write
by hand or with a logging hook.

HAR 1.2: http://www.softwareishard.com/blog/har-12-spec/
"""

from __future__ import annotations

import base64
import binascii
import sys
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from analyzer.ingest.text import decode_content
from analyzer.llmcalls import is_chat_stream, is_llm_request
from analyzer.model import Exchange, Notice, Request, Response, header_value


def headers_of(value: Any) -> list[tuple[str, str]]:
    """Headers in any common shape: HAR's [{name, value}], a dict, or [[name, value]]."""
    if isinstance(value, dict):
        out = []
        for name, item in value.items():
            for one in item if isinstance(item, list) else [item]:
                out.append((str(name), "" if one is None else str(one)))
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and "name" in item:
                out.append(_header(item["name"], item.get("value", "")))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                out.append((str(item[0]), str(item[1])))
        return out
    return []


def _header(name: Any, value: Any) -> tuple[str, str]:
    """One header; names and short values are interned, as thousands of entries repeat them."""
    value = str(value)
    return sys.intern(str(name)), sys.intern(value) if len(value) <= 64 else value


def _body_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return orjson.dumps(value)  # a body a dump stored already parsed


def _form_body(params: list[Any]) -> bytes:
    """A body a producer kept only as form `params`. A JSON body sent with a form content type
    (`curl -d`) comes back as one parameter named by the whole JSON, with no value: that JSON."""
    pairs = [(str(p.get("name", "")), str(p.get("value") or "")) for p in params if isinstance(p, dict)]
    if len(pairs) == 1 and not pairs[0][1] and pairs[0][0][:1] in ("{", "["):
        return pairs[0][0].encode("utf-8", "surrogatepass")
    return urlencode(pairs).encode()


def _request(data: dict[str, Any]) -> Request:
    body = None
    post = data.get("postData")
    if isinstance(post, dict):
        if post.get("text") is not None:
            body = _body_bytes(post["text"])
        elif isinstance(post.get("params"), list):
            body = _form_body(post["params"])
    if body is None:
        body = _body_bytes(data.get("body", data.get("data")))
    return Request(
        method=data.get("method"),
        url=data.get("url"),
        http_version=data.get("httpVersion"),
        headers=headers_of(data.get("headers")),
        body=body,
    )


def _response(data: dict[str, Any], warnings: list[Notice], *, decoded: bool) -> Response:
    """`decoded`: the producer promises the body is already content-decoded (chatcap/1)."""
    headers = headers_of(data.get("headers"))
    content = data.get("content")
    body: bytes | None = None
    if isinstance(content, dict):
        text = content.get("text")
        if text is not None and content.get("encoding") == "base64":
            try:
                body = base64.b64decode(text, validate=False)
            except (binascii.Error, ValueError):
                warnings.append(Notice("bad_base64", "response body marked base64 does not decode: kept as text"))
                body = _body_bytes(text)
        else:
            body = _body_bytes(text)
        if body is None:
            _missing_body(data, content, warnings)
    else:
        body = _body_bytes(data.get("body", data.get("data")))
    status = data.get("status", data.get("statusCode", data.get("status_code")))
    response = Response(
        # HAR's 0: no response status (the request failed, or the producer did not know).
        status=int(status) if isinstance(status, (int, str)) and str(status).isdigit() and int(status) else None,
        reason=data.get("statusText", data.get("reason")),
        http_version=data.get("httpVersion"),
        headers=headers,
        body=body or b"",
    )
    chunks = data.get("_chunks")
    if isinstance(chunks, list):
        try:
            response.chunks = [(float(t), int(end)) for t, end in chunks]
        except (TypeError, ValueError):
            warnings.append(Notice("bad_chunks", "response._chunks is malformed: arrival times ignored"))
    if response.body and not decoded:
        decoded_body, notice = decode_content(response.body, response.header("content-encoding"))
        response.body = decoded_body
        if notice:
            warnings.append(notice)
    return response


def _missing_body(data: dict[str, Any], content: dict[str, Any], warnings: list[Notice]) -> None:
    """A HAR response without `content.text`: say so when a body was sent (by its size, or a
    successful status) so that no one mistakes the gap for an empty answer."""
    sizes = [content.get("size"), data.get("bodySize"), data.get("_transferSize")]
    size = next((n for n in sizes if isinstance(n, int) and n > 0), None)
    status = data.get("status")
    if size is None and not (isinstance(status, int) and 200 <= status < 300 and status != 204):
        return
    how_much = f" ({size} bytes)" if size is not None else ""
    comment = (
        f"; its note: {content['comment']!r}" if isinstance(content.get("comment"), str) and content["comment"] else ""
    )
    warnings.append(Notice("body_not_recorded", f"the producer did not record the response body{how_much}{comment}"))


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _websocket_messages(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Chrome's `_webSocketMessages`: [{type: send|receive, time: epoch s, opcode, data}]."""
    messages = obj.get("_webSocketMessages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _is_chat_websocket(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("type") == "receive" and '"choices"' in str(m.get("data", ""))[:65536] for m in messages)


def _websocket_stream(obj: dict[str, Any], request: Request, response: Response, warnings: list[Notice]) -> None:
    """A chat streamed over a WebSocket: each received text message becomes one stream event,
    timed by its `time`; the first JSON message sent that has `messages` is the request body."""
    messages = _websocket_messages(obj)
    started = _datetime(obj.get("startedDateTime"))
    body, chunks = bytearray(), []
    for message in messages:
        data = message.get("data")
        if not isinstance(data, str) or message.get("opcode", 1) != 1:
            continue
        if message.get("type") == "send":
            if request.body is None and '"messages"' in data:
                request.body = data.encode("utf-8", "surrogatepass")
            continue
        body += b"data: " + data.replace("\n", "\ndata: ").encode("utf-8", "surrogatepass") + b"\n\n"
        when = message.get("time")
        if started is not None and isinstance(when, (int, float)):
            chunks.append((round((when - started.timestamp()) * 1000, 3), len(body)))
    response.body = bytes(body)
    response.chunks = chunks if len(chunks) == sum(1 for m in messages if m.get("type") == "receive") else None
    warnings.append(
        Notice("websocket_messages", f"reassembled from {len(messages)} WebSocket messages (HAR _webSocketMessages)")
    )


def is_llm_pair(obj: dict[str, Any]) -> bool:
    """Whether a pair is an LLM API call (analyzer/llmcalls.py), judged before its bodies are
    decoded: from the request, else from the head of a plain-text event-stream response,
    else from WebSocket messages that carry chat `choices`."""
    if isinstance(obj.get("_chatcap"), dict):
        return True  # written by chatcap (the addon or `chatcap convert`), which kept only LLM calls
    if "_webSocketMessages" in obj:
        return _is_chat_websocket(_websocket_messages(obj))
    request = _request(obj["request"])
    path = urlsplit(request.url or "").path
    if is_llm_request(request.method, path, request.header("content-type") or "", request.body):
        return True
    response = obj["response"]
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    content_type = header_value(headers_of(response.get("headers")), "content-type") or content.get("mimeType") or ""
    if "text/event-stream" not in content_type.lower():
        return False
    if content.get("encoding") == "base64" or header_value(headers_of(response.get("headers")), "content-encoding"):
        head = _response(response, [], decoded="_chatcap" in obj).body[:65536]  # only event streams get decoded here
    else:
        text = content.get("text") if isinstance(content.get("text"), str) else response.get("body")
        head = text[:65536].encode("utf-8", "surrogatepass") if isinstance(text, str) else b""
    return is_chat_stream(content_type, head)


def is_pair(obj: Any) -> bool:
    """A dict with a request and a response object: a HAR entry or a simple dump."""
    return isinstance(obj, dict) and isinstance(obj.get("request"), dict) and isinstance(obj.get("response"), dict)


def exchange_from_pair(obj: dict[str, Any], *, id: str, source: str, position: str, fmt: str, raw: bytes) -> Exchange:
    warnings: list[Notice] = []
    response = _response(obj["response"], warnings, decoded="_chatcap" in obj)
    request = _request(obj["request"])
    if _is_chat_websocket(_websocket_messages(obj)):
        _websocket_stream(obj, request, response, warnings)
    meta = obj.get("_chatcap") if isinstance(obj.get("_chatcap"), dict) else {}
    # What an earlier chatcap said about the exchange (`chatcap convert` keeps it in `_chatcap`).
    warnings[:0] = [
        Notice(notice["code"], str(notice.get("message", notice["code"])))
        for notice in meta.get("warnings") or []
        if isinstance(notice, dict) and isinstance(notice.get("code"), str)
    ]
    timings = obj.get("timings")
    return Exchange(
        id=id,
        source=source,
        position=position,
        format=fmt,
        request=request,
        response=response,
        raw=raw,
        # A start chatcap inferred (from the Date header, or a stand-in) is not the producer's figure.
        started_at=None if meta.get("startedDateTime_from") else _datetime(obj.get("startedDateTime")),
        timings={k: float(v) for k, v in timings.items() if isinstance(v, (int, float))}
        if isinstance(timings, dict)
        else None,
        timings_source=meta["timings_source"] if isinstance(meta.get("timings_source"), str) else "har",
        error=obj.get("_error") if isinstance(obj.get("_error"), str) else None,
        complete=meta.get("complete") if isinstance(meta.get("complete"), bool) else None,
        redacted=list(meta.get("redacted") or []),
        warnings=warnings,
    )
