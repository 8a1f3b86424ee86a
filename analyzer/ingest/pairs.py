"""Request/response pairs given as JSON: HAR 1.2 entries (chatcap/1 capture lines are
HAR entries) and the looser `{"request": {...}, "response": {...}}` dumps people write
by hand or with a logging hook.

HAR 1.2: http://www.softwareishard.com/blog/har-12-spec/
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

from analyzer.ingest.text import BODY_CAP, decode_content, undo_legacy_decode
from analyzer.llmcalls import is_chat_stream, is_llm_request
from analyzer.model import Exchange, Notice, Request, Response, header_value


def _kind(value: Any) -> str:
    """What a JSON value is, for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _odd(warnings: list[Notice] | None, where: str, value: Any, what: str, done: str = "ignored") -> None:
    if warnings is not None:
        warnings.append(Notice("odd_field", f"{where} is {_kind(value)}, not {what}: {done}"))


def _text(value: Any, where: str, warnings: list[Notice] | None) -> str | None:
    """A field that must be a string: None when absent or null; anything else is a notice."""
    if value is None or isinstance(value, str):
        return value
    _odd(warnings, where, value, "a string")
    return None


def _scalar_text(value: Any) -> str | None:
    """A header name or value: a string, or a number or true/false as written; None for a list or object."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def headers_of(value: Any, warnings: list[Notice] | None = None, where: str = "headers") -> list[tuple[str, str]]:
    """Headers in any common shape: HAR's [{name, value}], a dict, or [[name, value]]. A header
    whose name or value is a list or an object (other than a dict's list of values) is left out."""
    out: list[tuple[str, str]] = []
    odd = 0
    if isinstance(value, dict):
        for name, item in value.items():
            for one in item if isinstance(item, list) else [item]:
                text = _scalar_text(one)
                if text is None:
                    odd += 1
                else:
                    out.append(_header(name, text))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and "name" in item:
                name, text = _scalar_text(item["name"]), _scalar_text(item.get("value", ""))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                name, text = _scalar_text(item[0]), _scalar_text(item[1])
            else:
                name = text = None
            if name is None or text is None:
                odd += 1
            else:
                out.append(_header(name, text))
    elif value is not None:
        _odd(warnings, where, value, "a list of headers")
    if odd and warnings is not None:
        warnings.append(Notice("odd_field", f"{odd} of the {where} are not a name and a value: left out"))
    return out


def _header(name: str, value: str) -> tuple[str, str]:
    """One header; names and short values are interned, as thousands of entries repeat them."""
    return sys.intern(name), sys.intern(value) if len(value) <= 64 else value


def _body_bytes(value: Any, where: str = "body", warnings: list[Notice] | None = None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    try:
        return orjson.dumps(value)  # a body a dump stored already parsed
    except orjson.JSONEncodeError:  # nested past 254 levels, or an integer past 64 bits
        _odd(warnings, where, value, "text orjson can write", "left out (the raw record keeps it)")
        return None


def _as_sent(text: str, body: bytes | None, declared: Any, which: str, warnings: list[Notice] | None) -> bytes | None:
    """A JSON or event-stream body served without a charset, which the producer stored as
    text decoded from Latin-1 or windows-1252 (Chromium, mitmproxy's hardump): the UTF-8
    bytes it was (see `undo_legacy_decode`), with a notice; else the body as it is."""
    kind = declared.lower() if isinstance(declared, str) else ""
    if "charset" in kind or not ("json" in kind or "event-stream" in kind):
        return body
    undone = undo_legacy_decode(text)
    if undone is None:
        return body
    if warnings is not None:
        warnings.append(
            Notice(
                "mojibake_repaired",
                f"{which}: stored as text decoded from {undone[1]} (it was served without a charset); "
                "read as the UTF-8 it is",
            )
        )
    return undone[0]


def _base64_body(text: str, which: str, warnings: list[Notice] | None) -> bytes:
    """A body a producer stored as base64 (not UTF-8: chatcap/1, HAR's `encoding`)."""
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        if warnings is not None:
            warnings.append(Notice("bad_base64", f"{which} body marked base64 does not decode: kept as text"))
        return text.encode("utf-8", "surrogatepass")


def _form_body(params: list[Any]) -> bytes:
    """A body a producer kept only as form `params`. A JSON body sent with a form content type
    (`curl -d`) comes back as one parameter named by the whole JSON, with no value: that JSON."""
    pairs = [
        (_scalar_text(p.get("name")) or "", _scalar_text(p.get("value")) or "") for p in params if isinstance(p, dict)
    ]
    if len(pairs) == 1 and not pairs[0][1] and pairs[0][0][:1] in ("{", "["):
        return pairs[0][0].encode("utf-8", "surrogatepass")
    return urlencode(pairs).encode("utf-8", "surrogatepass")


# Characters a URL may hold as they are; the rest (brackets that do not close, spaces, non-ASCII
# that NFKC-normalises into a separator) is percent-encoded when the URL does not parse.
_URL_SAFE = ":/?#@!$&'()*+,;=%~-._"


def checked_url(value: Any, warnings: list[Notice] | None, where: str = "request.url") -> str | None:
    """A URL every later stage can split: as given when `urllib.parse.urlsplit` takes it, else with
    its odd characters percent-encoded (`http://[::1/x`: a bracket that does not close), else None;
    each change a notice (the raw record keeps the URL as it was)."""
    url = _text(value, where, warnings)
    if url is None:
        return None
    try:
        urlsplit(url)
        return url
    except ValueError as exc:
        error = str(exc)
    fixed = quote(url.encode("utf-8", "surrogatepass"), safe=_URL_SAFE)
    try:
        urlsplit(fixed)
    except ValueError:
        fixed = None
    if warnings is not None:
        done = "its odd characters percent-encoded" if fixed else "ignored"
        warnings.append(Notice("bad_url", f"{where} {url[:80]!r} does not parse ({error}): {done}"))
    return fixed


def status_code(value: Any, warnings: list[Notice] | None, where: str = "response.status") -> int | None:
    """An HTTP status: an integer from 100 to 999 (a string of ASCII digits counts); HAR's 0 (no
    status) and an absent one are None. Anything else is None with a notice; the raw record keeps it."""
    if value is None or value == 0 or value == "0":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        number: Any = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        number = value
    if type(number) is int and 100 <= number <= 999:
        return number
    if warnings is not None:
        shown = repr(value) if isinstance(value, (str, int, float)) and len(repr(value)) <= 40 else _kind(value)
        warnings.append(Notice("bad_status", f"{where} {shown} is not an HTTP status (100-999): ignored"))
    return None


def _request(data: dict[str, Any], warnings: list[Notice] | None = None) -> Request:
    body = None
    post = data.get("postData")
    if isinstance(post, dict):
        if post.get("encoding") == "base64" and isinstance(post.get("text"), str):
            body = _base64_body(post["text"], "request", warnings)
        elif post.get("text") is not None:
            body = _body_bytes(post["text"], "request.postData.text", warnings)
            if isinstance(post["text"], str):
                declared = header_value(headers_of(data.get("headers")), "content-type") or post.get("mimeType")
                body = _as_sent(post["text"], body, declared, "request body", warnings)
        elif isinstance(post.get("params"), list):
            body = _form_body(post["params"])
    elif post is not None:
        _odd(warnings, "request.postData", post, "an object")
    if body is None:
        body = _body_bytes(data.get("body", data.get("data")), "request.body", warnings)
    return Request(
        method=_text(data.get("method"), "request.method", warnings),
        url=checked_url(data.get("url"), warnings),
        http_version=_text(data.get("httpVersion"), "request.httpVersion", warnings),
        headers=headers_of(data.get("headers"), warnings, "request headers"),
        body=body,
    )


def _chunks(value: Any, warnings: list[Notice]) -> list[tuple[float, int]] | None:
    """`_chunks`: [[t_ms, end_byte], ...], times finite numbers and ends byte offsets (0 to 2^63)."""
    if value is None:
        return None
    out: list[tuple[float, int]] = []
    if isinstance(value, list):
        for item in value:
            if not (isinstance(item, list) and len(item) == 2):
                break
            t, end = item
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or abs(t) > 1e15:
                break
            if isinstance(end, float) and end.is_integer():
                end = int(end)
            if type(end) is not int or not 0 <= end < 1 << 63:
                break
            out.append((float(t), end))
        else:
            return out
    warnings.append(Notice("bad_chunks", "response._chunks is malformed: arrival times ignored"))
    return None


def _decoded_by_producer(obj: dict[str, Any]) -> bool:
    """chatcap/1 bodies are written decoded, except a response the addon kept as sent
    (`_asSent`: it would not decode, or inflates past the cap): that one is still encoded."""
    response = obj["response"]
    return "_chatcap" in obj and not (isinstance(response, dict) and response.get("_asSent"))


def _response(data: dict[str, Any], warnings: list[Notice], *, decoded: bool, limit: int = BODY_CAP) -> Response:
    """`decoded`: the producer promises the body is already content-decoded (chatcap/1); `limit`:
    the most bytes the body may decode to."""
    headers = headers_of(data.get("headers"), warnings, "response headers")
    content = data.get("content")
    body: bytes | None = None
    if isinstance(content, dict):
        text = content.get("text")
        if text is not None and content.get("encoding") == "base64":
            if not isinstance(text, str):
                _odd(warnings, "response.content.text", text, "base64 text")
            else:
                body = _base64_body(text, "response", warnings)
        else:
            body = _body_bytes(text, "response.content.text", warnings)
            if not decoded and isinstance(text, str):
                declared = header_value(headers, "content-type") or content.get("mimeType")
                body = _as_sent(text, body, declared, "response body", warnings)
        if body is None:
            _missing_body(data, content, warnings)
    else:
        if content is not None:
            _odd(warnings, "response.content", content, "an object")
        body = _body_bytes(data.get("body", data.get("data")), "response.body", warnings)
    status = data.get("status", data.get("statusCode", data.get("status_code")))
    response = Response(
        status=status_code(status, warnings),
        reason=_text(data.get("statusText", data.get("reason")), "response.statusText", warnings),
        http_version=_text(data.get("httpVersion"), "response.httpVersion", warnings),
        headers=headers,
        body=body or b"",
    )
    response.chunks = _chunks(data.get("_chunks"), warnings)
    if response.body and not decoded:
        decoded_body, notice = decode_content(response.body, response.header("content-encoding"), limit)
        if response.chunks and decoded_body is not response.body and data.get("_asSent"):
            # The reads' ends count the bytes as sent, not as decoded: only the last read's
            # time still holds (the body was whole by then).
            response.chunks = [(response.chunks[-1][0], len(decoded_body))]
            warnings.append(
                Notice("read_times_dropped", "the body was recorded still encoded: only its end time is known")
            )
        response.body = decoded_body
        if notice:
            warnings.append(notice)
    return response


# What the addon says about a response it could not record as usual, shown as a warning.
_ADDON_NOTES = {"_truncated": "record_capped", "_asSent": "body_recorded_as_sent", "_decodeError": "body_not_decoded"}


def _addon_notes(response: dict[str, Any], warnings: list[Notice]) -> None:
    for field, code in _ADDON_NOTES.items():
        note = response.get(field)
        if isinstance(note, str) and note:
            warnings.append(Notice(code, f"capture: {note[:300]}"))
        elif note is not None:
            _odd(warnings, f"response.{field}", note, "a string")


def _missing_body(data: dict[str, Any], content: dict[str, Any], warnings: list[Notice]) -> None:
    """A HAR response without `content.text`: say so when a body was sent (by its size, or a
    successful status) so that no one mistakes the gap for an empty answer."""
    sizes = [content.get("size"), data.get("bodySize"), data.get("_transferSize")]
    size = next((n for n in sizes if type(n) is int and n > 0), None)
    status = data.get("status")
    if size is None and not (type(status) is int and 200 <= status < 300 and status != 204):
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
    return any(
        m.get("type") == "receive" and isinstance(m.get("data"), str) and '"choices"' in m["data"][:65536]
        for m in messages
    )


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
        if started is not None and _is_number(when):
            ms = (when - started.timestamp()) * 1000
            if math.isfinite(ms) and abs(ms) <= 1e15:
                chunks.append((round(ms, 3), len(body)))
    response.body = bytes(body)
    response.chunks = chunks if len(chunks) == sum(1 for m in messages if m.get("type") == "receive") else None
    warnings.append(
        Notice("websocket_messages", f"reassembled from {len(messages)} WebSocket messages (HAR _webSocketMessages)")
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    headers = headers_of(response.get("headers"))
    mime_type = content.get("mimeType") if isinstance(content.get("mimeType"), str) else ""
    content_type = header_value(headers, "content-type") or mime_type
    if "text/event-stream" not in content_type.lower():
        return False
    if content.get("encoding") == "base64" or header_value(headers, "content-encoding"):
        # only event streams get decoded here, and only as far as the head looked at
        head = _response(response, [], decoded=_decoded_by_producer(obj), limit=65536).body[:65536]
    else:
        text = content.get("text") if isinstance(content.get("text"), str) else response.get("body")
        head = text[:65536].encode("utf-8", "surrogatepass") if isinstance(text, str) else b""
    return is_chat_stream(content_type, head)


def is_pair(obj: Any) -> bool:
    """A dict with a request and a response object: a HAR entry or a simple dump."""
    return isinstance(obj, dict) and isinstance(obj.get("request"), dict) and isinstance(obj.get("response"), dict)


def _earlier_warnings(meta: dict[str, Any], warnings: list[Notice]) -> list[Notice]:
    """What an earlier chatcap said about the exchange (`chatcap convert` keeps it in `_chatcap.warnings`)."""
    notes = meta.get("warnings")
    if notes is None:
        return []
    if not isinstance(notes, list):
        _odd(warnings, "_chatcap.warnings", notes, "a list")
        return []
    out = []
    for note in notes:
        if isinstance(note, dict) and isinstance(note.get("code"), str):
            message = note.get("message")
            out.append(Notice(note["code"], message if isinstance(message, str) else note["code"]))
        else:
            _odd(warnings, "a _chatcap.warnings item", note, "a notice with a code")
    return out


def _redacted(meta: dict[str, Any], warnings: list[Notice]) -> list[str]:
    """The header names an earlier chatcap redacted (`_chatcap.redacted`)."""
    names = meta.get("redacted")
    if names is None:
        return []
    if not isinstance(names, list):
        _odd(warnings, "_chatcap.redacted", names, "a list of header names")
        return []
    kept = [name for name in names if isinstance(name, str)]
    if len(kept) < len(names):
        warnings.append(
            Notice("odd_field", f"{len(names) - len(kept)} of _chatcap.redacted are not header names: left out")
        )
    return kept


def _timings(value: Any, warnings: list[Notice]) -> dict[str, float] | None:
    """HAR timings in ms: finite numbers (HAR's -1: not applicable); anything else is left out, with a notice."""
    if value is None:
        return None
    if not isinstance(value, dict):
        _odd(warnings, "timings", value, "an object")
        return None
    out = {}
    for name, ms in value.items():
        if _is_number(ms) and math.isfinite(ms) and abs(ms) <= 1e15:
            out[name] = float(ms)
        elif _is_number(ms):
            warnings.append(Notice("odd_field", f"timings.{name} {ms!r:.40} is out of range: ignored"))
        elif name != "comment" and not name.startswith("_"):  # HAR's comment, producers' extensions
            _odd(warnings, f"timings.{name}", ms, "a time in ms")
    return out


def exchange_from_pair(obj: dict[str, Any], *, id: str, source: str, position: str, fmt: str, raw: bytes) -> Exchange:
    """One request/response pair as an Exchange. A field of an unexpected type or out of range is
    left out (or repaired) with a notice on the exchange; the rest of the pair is kept."""
    warnings: list[Notice] = []
    response = _response(obj["response"], warnings, decoded=_decoded_by_producer(obj))
    if "_chatcap" in obj:
        _addon_notes(obj["response"], warnings)
    request = _request(obj["request"], warnings)
    if _is_chat_websocket(_websocket_messages(obj)):
        _websocket_stream(obj, request, response, warnings)
    meta = obj.get("_chatcap")
    if not isinstance(meta, dict):
        if meta is not None:
            _odd(warnings, "_chatcap", meta, "an object")
        meta = {}
    warnings[:0] = _earlier_warnings(meta, warnings)
    error = obj.get("_error")
    if error is not None and not isinstance(error, str):
        _odd(warnings, "_error", error, "a string")
        error = None
    complete = meta.get("complete")
    if complete is not None and not isinstance(complete, bool):
        _odd(warnings, "_chatcap.complete", complete, "true or false")
        complete = None
    timings_source = meta.get("timings_source")
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
        timings=_timings(obj.get("timings"), warnings),
        timings_source=timings_source if isinstance(timings_source, str) else "har",
        error=error,
        complete=complete,
        redacted=_redacted(meta, warnings),
        warnings=warnings,
    )
