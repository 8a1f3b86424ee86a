"""Protocols: turn an Exchange's response into a Reconstruction.

The protocol is recognised from the request path and the body's shape, never from the
host: gateways and self-hosted servers serve every protocol under any name.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson

from analyzer.llmcalls import protocol_of_path
from analyzer.model import Exchange, Part, Reconstruction, StreamChunk, collector_paused, dumps_exact, url_parts
from analyzer.protocols import anthropic, gemini, openai_chat, openai_responses
from analyzer.protocols.events import error_text, payload_of, shown
from analyzer.usage import identity_problem

_UNPARSED: Any = object()
# The protocols with an event-typed stream, by name.
MODULES = {
    anthropic.PROTOCOL: anthropic,
    openai_responses.PROTOCOL: openai_responses,
    gemini.PROTOCOL: gemini,
}

_STREAM_START = re.compile(rb"^\s*(?:data|event|id|retry)?:", re.M)
_FIRST_DATA = re.compile(rb"^data:", re.M)
# Other protocols' fingerprints: recognised so they are named, not misread as chat/completions.
_OTHER_SHAPES = (
    (re.compile(rb'"type"\s*:\s*"message_start"|^event:\s*message_start', re.M), anthropic.PROTOCOL),
    (re.compile(rb'"type"\s*:\s*"response\.created"|^event:\s*response\.', re.M), openai_responses.PROTOCOL),
    (re.compile(rb'"candidates"\s*:|"usageMetadata"\s*:'), gemini.PROTOCOL),
    # Non-streaming bodies: Anthropic's message (its `type` in any key order: the lookahead),
    # the Responses API's response object.
    (re.compile(rb'^\s*\{(?=[\s\S]*"type"\s*:\s*"message"\s*[,}])[\s\S]*"stop_reason"\s*:'), anthropic.PROTOCOL),
    (re.compile(rb'"object"\s*:\s*"response"'), openai_responses.PROTOCOL),
)


def is_event_stream(exchange: Exchange) -> bool:
    response = exchange.response
    if response is None:
        return False
    content_type = (response.header("content-type") or "").lower()
    if "event-stream" in content_type:
        # A stream starts with a field or a comment; a JSON body under this content type is
        # an error the server sent before streaming (Gemini's 400 on `alt=sse`).
        return response.body.lstrip()[:1] not in (b"{", b"[")
    if "json" in content_type:
        return False
    return bool(_STREAM_START.match(response.body[:256]))


@functools.lru_cache(maxsize=4096)
def _protocol_of_url(url: str) -> str | None:
    parts = url_parts(url)
    return protocol_of_path(parts.path) if parts else None


def detect(exchange: Exchange) -> str:
    """The protocol name: from the path when it says, else from the body's shape."""
    url = exchange.request.url if exchange.request else None
    if url:
        name = _protocol_of_url(url)
        if name:
            return name
    body = exchange.response.body if exchange.response else b""
    starts = [0]  # where the 8 kB looked at begin (searched in place: no copies)
    first_data = _FIRST_DATA.search(body)
    if first_data and first_data.start() > 4096:  # past a long run of keep-alive comments
        starts.append(first_data.start())
    for start in starts:
        end = start + 8192
        if body.find(b'"choices"', start, end) != -1 or body.find(b'"chat.completion', start, end) != -1:
            return openai_chat.PROTOCOL
        for pattern, name in _OTHER_SHAPES:
            if pattern.search(body, start, end):
                return name
    return _whole_body_shape(body) or _request_shape(exchange.request.json() if exchange.request else None) or "unknown"


def _whole_body_shape(body: bytes) -> str | None:
    """A JSON body past the 8 kB looked at, judged by its parsed top level (an Anthropic
    message whose server-tool results fill the first 60 kB, before `stop_reason`)."""
    if len(body) <= 8192 or body.lstrip()[:1] != b"{":
        return None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    if obj.get("type") == "message" and "content" in obj:
        return anthropic.PROTOCOL
    if obj.get("object") == "response":
        return openai_responses.PROTOCOL
    if "candidates" in obj or "usageMetadata" in obj:
        return gemini.PROTOCOL
    if "choices" in obj:
        return openai_chat.PROTOCOL
    return None


def _request_shape(body: Any) -> str | None:
    """The protocol a request body's fields say, or None."""
    if not isinstance(body, dict):
        return None
    if "contents" in body:
        return gemini.PROTOCOL
    if "input" in body and "messages" not in body:
        return openai_responses.PROTOCOL
    if "messages" in body:
        # Anthropic's request names max_tokens and may put the system prompt on top.
        return anthropic.PROTOCOL if "system" in body and "max_tokens" in body else openai_chat.PROTOCOL
    return None


def _parsed(exchange: Exchange, body: Any) -> Any:
    if body is _UNPARSED:
        return exchange.request.json() if exchange.request else None
    return body


def request_messages(exchange: Exchange, body: Any = _UNPARSED) -> list[dict[str, Any]]:
    """The request's system prompt and history as chat messages (chat/completions' shape),
    whatever protocol the request speaks. `body`: the request body already parsed, if it is."""
    body = _parsed(exchange, body)
    if not isinstance(body, dict):
        return []
    module = MODULES.get(detect_request(exchange, body))
    if module is not None:
        return [_with_text_fields(m) for m in module.request_messages(body)]
    messages = body.get("messages")
    return [_with_text_fields(m) for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


# The fields of a chat message, and of each of its tool calls and their `function`, that hold
# text: a value of another type (a role that is a number, a call id that is a list) is kept as
# its JSON text, so that every reader of a history (threads, transcripts, frames, exports)
# meets text where text belongs. Tool call arguments are JSON text in chat's shape anyway.
# `tool_calls` that is not a list holds no call (the threads never read one from it either).
_TEXT_FIELDS = ("role", "name", "tool_call_id")
_CALL_TEXT_FIELDS = ("id", "type")
_FUNCTION_TEXT_FIELDS = ("name", "arguments")


def _with_text_fields(message: dict[str, Any], fields: tuple[str, ...] = _TEXT_FIELDS) -> dict[str, Any]:
    if len(message) == 2 and type(message.get("role")) is str and "content" in message:
        return message  # a role and content alone, as most messages are: nothing to fix
    odd = {key: dumps_exact(message[key]) for key in fields if not isinstance(message.get(key), str | None)}
    calls = message.get("tool_calls") if fields is _TEXT_FIELDS else None
    if calls is not None and not isinstance(calls, list):
        odd["tool_calls"] = None
    elif calls:
        fixed = [_with_call_text_fields(call) if isinstance(call, dict) else call for call in calls]
        if any(new is not old for new, old in zip(fixed, calls, strict=True)):
            odd["tool_calls"] = fixed
    return {**message, **odd} if odd else message


def _with_call_text_fields(call: dict[str, Any]) -> dict[str, Any]:
    fixed = _with_text_fields(call, _CALL_TEXT_FIELDS)
    function = call.get("function")
    if isinstance(function, dict):
        checked = _with_text_fields(function, _FUNCTION_TEXT_FIELDS)
        if checked is not function:
            fixed = {**fixed, "function": checked}
    return fixed


def request_tools(exchange: Exchange, body: Any = _UNPARSED) -> list[dict[str, Any]]:
    """The tools the request offered, function tools in chat/completions' shape."""
    body = _parsed(exchange, body)
    if not isinstance(body, dict):
        return []
    module = MODULES.get(detect_request(exchange, body))
    if module is not None:
        return module.request_tools(body)
    tools = body.get("tools")
    return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []


def request_params(exchange: Exchange, body: Any = _UNPARSED) -> dict[str, Any]:
    """The sampling parameters the request set, under one set of names whatever the protocol:
    temperature, top_p, max_tokens (the output cap), reasoning (effort or thinking budget)."""
    body = _parsed(exchange, body)
    if not isinstance(body, dict):
        return {}
    protocol = detect_request(exchange, body)
    config = body
    if protocol == gemini.PROTOCOL:
        config = body.get("generationConfig") or body.get("generation_config") or {}
    if not isinstance(config, dict):
        return {}
    found = {
        "temperature": config.get("temperature"),
        "top_p": config.get("top_p", config.get("topP")),
        "max_tokens": next(
            (config[key] for key in _OUTPUT_CAPS if isinstance(config.get(key), int)),
            None,
        ),
        "reasoning": _reasoning_setting(protocol, body, config),
    }
    return {name: value for name, value in found.items() if value is not None}


# The output cap's name in each protocol (chat has two: max_tokens is the older).
_OUTPUT_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens", "maxOutputTokens")


def _reasoning_setting(protocol: str, body: dict[str, Any], config: dict[str, Any]) -> str | None:
    if protocol == anthropic.PROTOCOL:
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            budget = thinking.get("budget_tokens")
            return f"thinking, budget {shown(budget)}" if budget else f"thinking, {thinking['type']}"
        return None
    if protocol == gemini.PROTOCOL:
        thinking = config.get("thinkingConfig") or {}
        if not isinstance(thinking, dict):
            return None
        if thinking.get("thinkingLevel"):
            return shown(thinking["thinkingLevel"]).lower()
        budget = thinking.get("thinkingBudget")
        return None if budget is None else f"budget {shown(budget)}"
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort = body["reasoning"].get("effort")  # Responses, OpenRouter
    return shown(effort) if effort is not None else None


def detect_request(exchange: Exchange, body: Any) -> str:
    """The protocol of a request, from its path, else from its body's fields."""
    url = exchange.request.url if exchange.request else None
    name = _protocol_of_url(url) if url else None
    return name or _request_shape(body) or openai_chat.PROTOCOL


def chunk_parts(rec: Reconstruction, chunk: StreamChunk) -> list[Part]:
    """What one stream chunk carries, piece by piece, in any protocol. A text field of another
    type (a delta's text that is a number) carries nothing, as the folds read it (`as_text`)."""
    module = MODULES.get(rec.protocol)
    if module is not None:
        parts = module.chunk_parts(payload_of(chunk.payload))
    elif rec.protocol == openai_chat.PROTOCOL:
        parts = openai_chat.chunk_parts(chunk)
    else:
        return []
    return parts if all(type(part.text) is str for part in parts) else [p for p in parts if type(p.text) is str]


def reconstruct(exchange: Exchange) -> Reconstruction:
    """Reconstruct `exchange`; odd input becomes warnings on the result, never an exception.
    The decoders read a payload nested past Python's recursion limit as not JSON, so the
    garbage collector is paused meanwhile (`collector_paused`)."""
    try:
        rec = collector_paused(_reconstruct, exchange)
        if rec.usage is not None and (problem := identity_problem(rec.usage)):
            rec.warn("usage_identity", problem)
        return rec
    except Exception as exc:  # a bug, not bad input: still one exchange, never the whole batch
        try:
            protocol, streamed = detect(exchange), is_event_stream(exchange)
        except Exception:  # the bug is in detecting it: say so all the same
            protocol, streamed = "unknown", False
        rec = Reconstruction(protocol=protocol, streamed=streamed)
        rec.warnings.extend(exchange.warnings)
        rec.truncated = True
        rec.warn(
            "reconstruction_failed",
            f"could not reconstruct ({type(exc).__name__}: {exc}); the raw bytes are kept: please report this",
        )
        return rec


def _reconstruct(exchange: Exchange) -> Reconstruction:
    protocol = detect(exchange)
    streamed = is_event_stream(exchange)
    rec = Reconstruction(protocol=protocol, streamed=streamed, requested_model=exchange.requested_model())
    rec.warnings.extend(exchange.warnings)
    response = exchange.response
    if exchange.error and (response is None or (not response.status and not response.body)):
        # The proxy recorded why there is no reply (an upstream TLS failure, a refused connection).
        rec.error = {"message": exchange.error, "type": "no_response"}
        rec.warn("no_response", f"no response: {exchange.error}")
        return rec
    if response is None:
        rec.truncated = True
        rec.warn("no_response", "no response recorded")
        return rec
    if exchange.warnings and any(notice.code == "body_not_recorded" for notice in exchange.warnings):
        return rec  # the producer kept no body: nothing to reconstruct, and not an empty answer
    if protocol == gemini.PROTOCOL and not streamed and response.body.lstrip()[:1] == b"[":
        rec.streamed = True  # streamGenerateContent without alt=sse: one JSON array, element by element
        return gemini.reconstruct_array(exchange, rec)
    if streamed:
        module = MODULES.get(protocol)
        if module is not None:
            return module.reconstruct_stream(exchange, rec)
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
        if _is_html(response.header("content-type"), body):
            text = f"HTML page: {_page_text(body)}"
        if response.status and response.status >= 400:
            rec.error = {"message": text, "status": response.status}
            rec.warn("error_response", f"HTTP {response.status}: {text[:120]}")
        else:
            rec.warn("unreadable_body", f"response body is neither an event stream nor JSON: {text[:60]!r}")
        return rec
    if isinstance(obj, dict) and "error" in obj and not obj.get("choices") and not _whole_object(obj):
        # Every protocol's error body is {"error": ...}: no need to know which one it was.
        rec.error = obj["error"] if isinstance(obj["error"], dict) else {"message": shown(obj["error"])}
        status = f"HTTP {response.status}: " if response.status else ""
        rec.warn("error_response", f"error response: {status}{error_text(rec.error)}")
        return rec
    module = MODULES.get(protocol)
    if module is not None:
        return module.reconstruct_json(exchange, rec, obj)
    if protocol != openai_chat.PROTOCOL:
        return _unsupported(rec, protocol)
    return openai_chat.reconstruct_json(exchange, rec, obj)


def _whole_object(obj: dict[str, Any]) -> bool:
    """A protocol's whole answer that has an `error` field of its own (a Responses API
    response, null unless it failed), not an error body."""
    return obj.get("object") == "response" or "candidates" in obj


_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def _is_html(content_type: str | None, body: bytes) -> bool:
    """A gateway's or proxy's error page (nginx, Cloudflare, a load balancer) rather than the API's."""
    return "html" in (content_type or "").lower() or body.lstrip()[:15].lower().startswith(
        (b"<!doctype html", b"<html")
    )


def _page_text(body: bytes) -> str:
    """What a person would read on an HTML page, in a line: its title, then its visible text."""
    import html

    page = body[:65536].decode("utf-8", "replace")
    title = _TITLE.search(page)
    words = " ".join(html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", page))).split())
    heading = " ".join(html.unescape(_TAG.sub(" ", title.group(1))).split()) if title else ""
    if heading and words.startswith(heading):
        words = words[len(heading) :].lstrip()
    return (f"{heading}: {words}" if heading and words else heading or words)[:300]


def _unsupported(rec: Reconstruction, protocol: str) -> Reconstruction:
    if protocol == "unknown":
        rec.warn("unknown_protocol", "no known LLM protocol in this exchange: raw bytes kept")
    else:
        rec.warn("unsupported_protocol", f"{protocol} responses are not reconstructed yet: raw bytes kept")
    return rec
