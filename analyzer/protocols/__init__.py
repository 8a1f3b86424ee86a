"""Protocols: turn an Exchange's response into a Reconstruction.

The protocol is recognised from the request path and the body's shape, never from the
host: gateways and self-hosted servers serve every protocol under any name.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import orjson

from analyzer.llmcalls import protocol_of_path
from analyzer.model import Exchange, Reconstruction
from analyzer.protocols import openai_chat

_STREAM_START = re.compile(rb"^\s*(?:data|event|id|retry)?:", re.M)
_FIRST_DATA = re.compile(rb"^data:", re.M)
# Other protocols' fingerprints: recognised so they are named, not misread as chat/completions.
_OTHER_SHAPES = (
    (re.compile(rb'"type"\s*:\s*"message_start"|^event:\s*message_start', re.M), "anthropic_messages"),
    (re.compile(rb'"type"\s*:\s*"response\.created"|^event:\s*response\.', re.M), "openai_responses"),
    (re.compile(rb'"candidates"\s*:|"usageMetadata"\s*:'), "gemini"),
)


def is_event_stream(exchange: Exchange) -> bool:
    response = exchange.response
    if response is None:
        return False
    content_type = (response.header("content-type") or "").lower()
    if "event-stream" in content_type:
        return True
    if "json" in content_type:
        return False
    return bool(_STREAM_START.match(response.body[:256]))


def detect(exchange: Exchange) -> str:
    """The protocol name: from the path when it says, else from the body's shape."""
    url = exchange.request.url if exchange.request else None
    if url:
        name = protocol_of_path(urlsplit(url).path)
        if name:
            return name
    body = exchange.response.body if exchange.response else b""
    heads = [body[:8192]]
    first_data = _FIRST_DATA.search(body)
    if first_data and first_data.start() > 4096:  # past a long run of keep-alive comments
        heads.append(body[first_data.start() : first_data.start() + 8192])
    for head in heads:
        if b'"choices"' in head or b'"chat.completion' in head:
            return openai_chat.PROTOCOL
        for pattern, name in _OTHER_SHAPES:
            if pattern.search(head):
                return name
    request = exchange.request.json() if exchange.request else None
    if isinstance(request, dict) and "messages" in request:
        return openai_chat.PROTOCOL
    return "unknown"


def reconstruct(exchange: Exchange) -> Reconstruction:
    """Reconstruct `exchange`; odd input becomes warnings on the result, never an exception."""
    protocol = detect(exchange)
    streamed = is_event_stream(exchange)
    rec = Reconstruction(protocol=protocol, streamed=streamed, requested_model=exchange.requested_model())
    rec.warnings.extend(exchange.warnings)
    response = exchange.response
    if response is None:
        rec.truncated = True
        rec.warn("no_response", "no response recorded")
        return rec
    if any(notice.code == "body_not_recorded" for notice in exchange.warnings):
        return rec  # the producer kept no body: nothing to reconstruct, and not an empty answer
    if streamed:
        if protocol != openai_chat.PROTOCOL:
            return _unsupported(rec, protocol)
        return openai_chat.reconstruct_stream(exchange, rec)
    body = response.body
    if not body.strip():
        rec.truncated = bool(exchange.error) or response.status is None or response.status < 300
        rec.warn("empty_body", "empty response body")
        return rec
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:500].decode("utf-8", "replace").strip()
        if response.status and response.status >= 400:
            rec.error = {"message": text, "status": response.status}
            rec.warn("error_response", f"HTTP {response.status}: {text[:120]}")
        else:
            rec.warn("unreadable_body", f"response body is neither an event stream nor JSON: {text[:60]!r}")
        return rec
    if isinstance(obj, dict) and "error" in obj and not obj.get("choices"):
        # Every protocol's error body is {"error": ...}: no need to know which one it was.
        rec.error = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
        status = f"HTTP {response.status}: " if response.status else ""
        rec.warn("error_response", f"error response: {status}{openai_chat.error_text(rec.error)}")
        return rec
    if protocol != openai_chat.PROTOCOL:
        return _unsupported(rec, protocol)
    return openai_chat.reconstruct_json(exchange, rec, obj)


def _unsupported(rec: Reconstruction, protocol: str) -> Reconstruction:
    if protocol == "unknown":
        rec.warn("unknown_protocol", "no known LLM protocol in this exchange: raw bytes kept")
    else:
        rec.warn("unsupported_protocol", f"{protocol} responses are not reconstructed yet: raw bytes kept")
    return rec
