"""Anthropic's Messages API (`POST …/v1/messages`), streaming and not.

A stream is `message_start` (the message with empty content and the prompt's usage), then
per content block `content_block_start` / `content_block_delta`… / `content_block_stop`,
then `message_delta` (stop reason, cumulative usage) and `message_stop`; `ping` events
keep the connection alive and an `error` event can end it. Deltas: `text_delta`,
`thinking_delta`, `signature_delta`, `input_json_delta` (tool input as pieces of JSON
text, parsed once whole), `citations_delta`, and the beta `compaction_delta` (a compaction
block's summary, whole). A beta `fallback` block says which model served the answer
after the one named in `message_start` declined: that model is the message's.

Blocks are kept in their order with their type (text, thinking, redacted_thinking,
tool_use, server_tool_use, mcp_tool_use, the server tools' result blocks); the final
message is `to_native()`. Onto the chat shape: text blocks are the content, thinking the
reasoning, `tool_use` blocks the tool calls, server-side tool blocks provider extras.

Reference: https://docs.anthropic.com/en/docs/build-with-claude/streaming
"""

from __future__ import annotations

from typing import Any

import orjson

from analyzer.model import Choice, Exchange, Part, Reconstruction, StreamChunk, loads_exact
from analyzer.protocols.events import Marks, add_chunk, content_text, ending, json_text, stream_payloads, tool_call
from analyzer.usage import normalise as normalise_usage

PROTOCOL = "anthropic_messages"
# Blocks whose `input` streams as input_json_delta.
TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def reconstruct_stream(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    marks = Marks()
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    inputs: dict[int, list[str]] = {}  # input_json_delta pieces per block
    unknown: dict[str, int] = {}
    pings = 0
    chunks = rec.chunks
    append = chunks.append
    # Text and thinking pieces per block, joined once at the end (a long answer is thousands).
    pieces: dict[tuple[Any, str], list[str]] = {}
    answer_texts: dict[Any, list[str]] = {}  # the hot path's shortcut into `pieces` for text blocks
    for t_ms, name, payload in stream_payloads(exchange, rec):
        try:
            if type(payload) is not dict:
                rec.warn(
                    "chunk_shape", f"event {len(rec.chunks) + 1}: a {type(payload).__name__}, not an object: ignored"
                )
                continue
            kind = payload.get("type") or name
            if kind == "ping":
                pings += 1
                continue
            seq = len(chunks)
            append(StreamChunk(seq, t_ms, payload))
            if kind == "content_block_delta":
                delta = payload.get("delta")
                if type(delta) is dict and delta.get("type") == "text_delta":  # most events: a piece of the answer
                    found = answer_texts.get(payload.get("index"))
                    text = delta.get("text")
                    if found is not None and type(text) is str:
                        if text:
                            found.append(text)
                            marks.last_token = seq
                            if marks.first_answer is None:
                                marks.token(seq, True)
                        continue
                index, delta = payload.get("index"), payload.get("delta")
                block = blocks.get(index)  # type: ignore[arg-type]
                if block is None or type(delta) is not dict:
                    rec.warn("block_order", f"event {seq + 1}: a delta for block {index!r}, which was never started")
                    continue
                delta_type = delta.get("type")
                if delta_type == "text_delta" or delta_type == "thinking_delta":
                    field = "text" if delta_type == "text_delta" else "thinking"
                    text = delta.get(field)
                    if text and type(text) is str:
                        found = pieces.get((index, field))
                        if found is None:
                            pieces[index, field] = found = [text]
                            if field == "text" and block.get("type") == "text":
                                answer_texts[index] = found
                        else:
                            found.append(text)
                        marks.last_token = seq
                        if marks.first_answer is None or marks.first_token is None:
                            marks.token(seq, field == "text")
                elif delta_type == "input_json_delta":
                    piece = delta.get("partial_json") or ""
                    inputs.setdefault(index, []).append(piece)  # type: ignore[arg-type]
                    if piece:
                        marks.token(seq, False)
                elif delta_type == "signature_delta":
                    block["signature"] = delta.get("signature")
                elif delta_type == "citations_delta":
                    block.setdefault("citations", None)
                    block["citations"] = [*(block["citations"] or []), delta.get("citation")]
                elif delta_type == "compaction_delta":  # replaces, as the SDK's beta accumulator does
                    block["content"] = delta.get("content")
                    block["encrypted_content"] = delta.get("encrypted_content")
                else:
                    unknown[f"delta {delta_type}"] = unknown.get(f"delta {delta_type}", 0) + 1
            elif kind == "content_block_start":
                index, block = payload.get("index"), payload.get("content_block")
                if not isinstance(index, int) or not isinstance(block, dict):
                    rec.warn("chunk_shape", f"event {seq + 1}: content_block_start without an index or block: ignored")
                    continue
                if index in blocks:
                    rec.warn("block_order", f"event {seq + 1}: block {index} started twice; the later one is kept")
                    for field in ("text", "thinking"):
                        pieces.pop((index, field), None)
                    inputs.pop(index, None)
                    answer_texts.pop(index, None)
                blocks[index] = dict(block)
                if block.get("type") == "fallback" and message is not None:
                    served = block.get("to")
                    if isinstance(served, dict) and isinstance(served.get("model"), str):
                        message["model"] = served["model"]  # as the non-streaming message names it
                if block.get("text") or block.get("thinking"):
                    marks.token(seq, bool(block.get("text")))
                elif block.get("type") in TOOL_INPUT_BLOCKS or block.get("type") == "redacted_thinking":
                    marks.token(seq, False)
            elif kind == "content_block_stop":
                pass
            elif kind == "message_start":
                start = payload.get("message")
                if not isinstance(start, dict):
                    rec.warn("chunk_shape", f"event {seq + 1}: message_start without a message: ignored")
                    continue
                if message is not None:
                    rec.warn("message_restarted", f"event {seq + 1}: a second message_start; its fields are merged in")
                    message.update({k: v for k, v in start.items() if k != "content"})
                else:
                    message = dict(start)
                    if isinstance(start.get("usage"), dict):
                        message["usage"] = dict(start["usage"])
                    for index, block in enumerate(start.get("content") or ()):  # a prefilled start
                        if isinstance(block, dict):
                            blocks[index] = dict(block)
            elif kind == "message_delta":
                if message is None:
                    message = {}
                    rec.warn("block_order", f"event {seq + 1}: message_delta before message_start")
                delta = payload.get("delta") or {}
                if isinstance(delta, dict):
                    for key in ("stop_reason", "stop_sequence", "stop_details"):
                        message[key] = delta.get(key)
                    for key, value in delta.items():
                        if key not in ("stop_reason", "stop_sequence", "stop_details") and value is not None:
                            message[key] = value
                usage = payload.get("usage")
                if isinstance(usage, dict):
                    merged = dict(message.get("usage") or {})
                    # Cumulative totals: each figure given replaces the one before; one left out keeps it.
                    merged.update({key: value for key, value in usage.items() if value is not None})
                    message["usage"] = merged
                for key, value in payload.items():
                    if key not in ("type", "delta", "usage") and value is not None:
                        message[key] = value  # e.g. context_management
            elif kind == "message_stop":
                rec.done = True
            elif kind == "error":
                rec.error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
            else:
                unknown[str(kind)] = unknown.get(str(kind), 0) + 1
        except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
            rec.warn("chunk_shape", f"event {len(rec.chunks)}: a field of an unexpected type ({exc}): ignored")
    if pings:
        rec.extras["pings"] = pings
    for name, count in unknown.items():
        rec.warn("unknown_event", f"{count} event(s) of unknown type {name!r}: kept in the chunks, not interpreted")
    for (index, field), found in pieces.items():
        block = blocks[index]
        block[field] = (block.get(field) or "") + "".join(found)
    message = dict(message or {})
    message["content"] = [_final_block(blocks[i], inputs.get(i), rec) for i in sorted(blocks)]
    _apply(rec, message)
    rec.marks = marks.as_dict()
    ending(exchange, rec, rec.done, "message_stop")
    if rec.done and any(block.get("type") is None for block in message["content"]):
        rec.warn("chunk_shape", "a content block without a type")
    return rec


def _final_block(block: dict[str, Any], pieces: list[str] | None, rec: Reconstruction) -> dict[str, Any]:
    if pieces and block.get("type") in TOOL_INPUT_BLOCKS:
        text = "".join(pieces)
        if text:
            try:
                block["input"] = loads_exact(text)
            except ValueError as exc:
                block["input"] = text
                rec.warn("tool_input_unparsed", f"tool {block.get('name')!r}: its input is not whole JSON ({exc})")
    return block


def reconstruct_json(exchange: Exchange, rec: Reconstruction, obj: Any) -> Reconstruction:
    """A non-streaming response: the message itself."""
    if not isinstance(obj, dict):
        rec.warn("response_shape", f"a {type(obj).__name__}, not a message object")
        return rec
    add_chunk(rec, None, obj)
    _apply(rec, dict(obj))
    rec.done = True
    if rec.choices and (rec.choices[0].content or rec.choices[0].reasoning or rec.choices[0].tool_calls):
        rec.marks = {"first_token": 0, "first_answer": 0 if rec.choices[0].content else None, "last_token": 0}
    return rec


def _apply(rec: Reconstruction, message: dict[str, Any]) -> None:
    """Fill `rec` from the final message (kept as the native object)."""
    rec.native = message
    rec.object = message.get("type") if isinstance(message.get("type"), str) else "message"
    rec.id = message.get("id") if isinstance(message.get("id"), str) else None
    if isinstance(message.get("model"), str) and message["model"]:
        rec.served_model = message["model"]
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[Any] = []
    calls = []
    citations: list[Any] = []
    server: list[Any] = []
    blocks = message.get("content") or []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
            citations.extend(block.get("citations") or ())
        elif kind == "thinking":
            thoughts.append(block.get("thinking") or "")
            details.append({"type": "thinking", "thinking": block.get("thinking"), "signature": block.get("signature")})
        elif kind == "redacted_thinking":
            details.append({"type": "redacted_thinking", "data": block.get("data")})
        elif kind == "tool_use":
            arguments = block.get("input")
            text = arguments if isinstance(arguments, str) else json_text(arguments if arguments is not None else {})
            calls.append(tool_call(len(calls), block.get("id"), block.get("name"), text))
        else:  # server_tool_use, mcp_tool_use and the result blocks: done by the provider
            server.append(block)
    stop = message.get("stop_reason")
    extras: dict[str, Any] = {}
    if server:
        extras["server_tools"] = server
    if stop is not None:
        extras["stop_reason"] = stop
    if message.get("stop_sequence"):
        extras["stop_sequence"] = message["stop_sequence"]
    rec.choices = [
        Choice(
            index=0,
            role=message.get("role") or "assistant",
            content="".join(texts) if texts else None,
            reasoning="\n\n".join(thoughts) if thoughts else None,
            reasoning_source="thinking" if thoughts else None,
            reasoning_details=details,
            tool_calls=calls,
            finish_reason=FINISH_REASONS.get(stop, stop) if isinstance(stop, str) else None,
            annotations=citations,
            extras=extras,
        )
    ]
    if isinstance(message.get("usage"), dict):
        rec.usage = normalise_usage(message["usage"])
    for key in ("container", "context_management", "stop_details"):
        if message.get(key) is not None:
            rec.extras[key] = message[key]


def chunk_parts(payload: Any) -> list[Part]:
    """What one event carries (frames.chunks)."""
    if not isinstance(payload, dict):
        return []
    kind = payload.get("type")
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        delta_type = delta.get("type")
        if delta_type == "text_delta" and delta.get("text"):
            return [Part(0, "content", delta["text"])]
        if delta_type == "thinking_delta" and delta.get("thinking"):
            return [Part(0, "reasoning", delta["thinking"])]
        if delta_type == "input_json_delta":
            return [Part(0, "tool_call", delta.get("partial_json") or "")]
        if delta_type in ("signature_delta", "citations_delta"):
            return [Part(0, "extra", orjson.dumps(delta).decode())]
        return []
    if kind == "content_block_start":
        block = payload.get("content_block") or {}
        if block.get("type") == "tool_use":
            return [Part(0, "tool_call", "")]
        if block.get("text"):
            return [Part(0, "content", block["text"])]
        if block.get("type") not in ("text", "thinking"):
            return [Part(0, "extra", orjson.dumps(block).decode())]
        return []
    if kind == "message_start":
        message = payload.get("message") or {}
        parts = [Part(0, "role", message.get("role") or "assistant")]
        if message.get("usage"):
            parts.append(Part(None, "usage", orjson.dumps(message["usage"]).decode()))
        return parts
    if kind == "message_delta" and payload.get("usage"):
        return [Part(None, "usage", orjson.dumps(payload["usage"]).decode())]
    if kind == "error":
        return [Part(None, "error", orjson.dumps(payload.get("error", payload)).decode())]
    return []


# -- the request ------------------------------------------------------------------------------


def request_messages(body: Any) -> list[dict[str, Any]]:
    """The request's system prompt and history as chat messages (OpenAI's shape), so the
    threads and exports read every protocol alike."""
    if not isinstance(body, dict):
        return []
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": content_text(system)})
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            out.append({"role": role, "content": content_text(content)})
            continue
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text") or "")
            elif kind == "thinking":
                thoughts.append(block.get("thinking") or "")
            elif kind == "tool_use":
                arguments = block.get("input")
                calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {"name": block.get("name"), "arguments": json_text(arguments)},
                    }
                )
            elif kind == "tool_result":
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.get("tool_use_id"),
                        "content": content_text(block.get("content")),
                    }
                )
            elif kind not in ("redacted_thinking",):
                texts.append(f"[{kind}]")
        out.extend(results)  # tool results answer the previous turn's calls: they come first
        if texts or calls or thoughts or not results:
            item: dict[str, Any] = {
                "role": role,
                "content": "".join(texts) if role == "assistant" else "\n".join(texts),
            }
            if thoughts:
                item["reasoning_content"] = "\n\n".join(thoughts)
            if calls:
                item["tool_calls"] = calls
            out.append(item)
    return out


def request_tools(body: Any) -> list[dict[str, Any]]:
    """Tools offered, as chat/completions function tools (server tools keep their own shape)."""
    tools = body.get("tools") if isinstance(body, dict) else None
    out = []
    for tool in tools or ():
        if not isinstance(tool, dict):
            continue
        if "input_schema" in tool:
            function = {"name": tool.get("name"), "parameters": tool.get("input_schema")}
            if tool.get("description"):
                function["description"] = tool["description"]
            out.append({"type": "function", "function": function})
        else:
            out.append(tool)
    return out
