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

from bisect import bisect_left
from itertools import compress
from typing import Any

import msgspec

from analyzer.model import (
    Choice,
    Exchange,
    Part,
    Reconstruction,
    StreamChunk,
    dumps_exact,
    loads_exact,
    numbered_chunks,
)
from analyzer.protocols.events import (
    Marks,
    add_chunk,
    as_list,
    as_text,
    content_text,
    ending,
    guarded,
    history_call,
    history_turn,
    json_text,
    shown,
    stream_payloads,
    tool_call,
    typed_events,
)
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


# The common events, decoded typed in one call per stream (the fast path); any other event
# or field fails the decode and the whole stream takes the general path, as dicts.
class _Typed(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False):
    pass


class TextDelta(_Typed, tag="text_delta"):
    text: str


class ThinkingDelta(_Typed, tag="thinking_delta"):
    thinking: str


class InputJsonDelta(_Typed, tag="input_json_delta"):
    partial_json: str


class SignatureDelta(_Typed, tag="signature_delta"):
    signature: str


class CitationsDelta(_Typed, tag="citations_delta"):
    citation: dict[str, Any]


class BlockDelta(_Typed, tag="content_block_delta"):
    index: int
    delta: TextDelta | ThinkingDelta | InputJsonDelta | SignatureDelta | CitationsDelta


class BlockStart(_Typed, tag="content_block_start"):
    index: int
    content_block: dict[str, Any]


class BlockStop(_Typed, tag="content_block_stop"):
    index: int


class MessageStart(_Typed, tag="message_start"):
    message: dict[str, Any]


class MessageDelta(_Typed, tag="message_delta"):
    delta: dict[str, Any]
    usage: dict[str, Any] | None
    context_management: Any = msgspec.UNSET  # the context editing beta's report, at the end


class MessageStop(_Typed, tag="message_stop"):
    pass


class Ping(_Typed, tag="ping"):
    pass


_decode_typed = msgspec.json.Decoder(
    BlockDelta | BlockStart | BlockStop | MessageStart | MessageDelta | MessageStop | Ping
).decode_lines


class _Fold:
    """The message as the events build it: blocks by index, text pieces joined at the end."""

    def __init__(self, rec: Reconstruction) -> None:
        self.rec = rec
        self.marks = Marks()
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.inputs: dict[int, list[str]] = {}  # input_json_delta pieces per block
        # Text and thinking pieces per block, joined once at the end (a long answer is thousands).
        self.pieces: dict[tuple[Any, str], list[str]] = {}
        self.unknown: dict[str, int] = {}
        self.pings = 0

    def text(self, index: Any, field: str, text: Any, seq: int) -> None:
        """A `text_delta` or `thinking_delta` (`field`: text or thinking) for block `index`."""
        found = self.pieces.get((index, field))
        if found is None:
            if index not in self.blocks:
                self.rec.warn("block_order", f"event {seq + 1}: a delta for block {index!r}, which was never started")
                return
            if not text or type(text) is not str:
                return
            self.pieces[index, field] = found = []
        elif not text or type(text) is not str:
            return
        found.append(text)
        marks = self.marks
        marks.last_token = seq
        if marks.first_answer is None or marks.first_token is None:
            marks.token(seq, field == "text")

    def tool_input(self, index: Any, piece: str, seq: int) -> None:
        if index not in self.blocks:
            self.rec.warn("block_order", f"event {seq + 1}: a delta for block {index!r}, which was never started")
            return
        self.inputs.setdefault(index, []).append(piece)
        if piece:
            self.marks.token(seq, False)

    def add(self, payload: dict[str, Any], kind: Any, seq: int) -> None:
        """Any event, as a dict (`kind`: its type, or its `event:` name)."""
        rec, blocks = self.rec, self.blocks
        if kind == "content_block_delta":
            index, delta = payload.get("index"), payload.get("delta")
            if type(delta) is not dict:
                rec.warn("block_order", f"event {seq + 1}: a delta for block {index!r} without a delta: ignored")
                return
            delta_type = delta.get("type")
            if delta_type == "text_delta" or delta_type == "thinking_delta":
                field = "text" if delta_type == "text_delta" else "thinking"
                self.text(index, field, delta.get(field), seq)
                return
            if delta_type == "input_json_delta":
                piece = delta.get("partial_json")
                if piece is not None and not isinstance(piece, str):
                    rec.warn(
                        "chunk_shape", f"event {seq + 1}: partial_json is a {type(piece).__name__}, not text: ignored"
                    )
                    piece = None
                self.tool_input(index, piece or "", seq)
                return
            block = blocks.get(index)  # type: ignore[arg-type]
            if block is None:
                rec.warn("block_order", f"event {seq + 1}: a delta for block {index!r}, which was never started")
            elif delta_type == "signature_delta":
                block["signature"] = delta.get("signature")
            elif delta_type == "citations_delta":
                block.setdefault("citations", None)
                block["citations"] = [*(block["citations"] or []), delta.get("citation")]
            elif delta_type == "compaction_delta":  # replaces, as the SDK's beta accumulator does
                block["content"] = delta.get("content")
                block["encrypted_content"] = delta.get("encrypted_content")
            else:
                self.unknown[f"delta {delta_type}"] = self.unknown.get(f"delta {delta_type}", 0) + 1
        elif kind == "content_block_start":
            self.start_block(payload.get("index"), payload.get("content_block"), seq)
        elif kind == "content_block_stop":
            pass
        elif kind == "message_start":
            self.start_message(payload.get("message"), seq)
        elif kind == "message_delta":
            extra = {k: v for k, v in payload.items() if k not in ("type", "delta", "usage")}
            self.end_message(payload.get("delta"), payload.get("usage"), extra, seq)
        elif kind == "message_stop":
            rec.done = True
        elif kind == "error":
            rec.error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
        else:
            self.unknown[str(kind)] = self.unknown.get(str(kind), 0) + 1

    def start_block(self, index: Any, block: Any, seq: int) -> None:
        """`content_block_start`: block `index` begins with its type and first fields."""
        rec, blocks = self.rec, self.blocks
        if not isinstance(index, int) or not isinstance(block, dict):
            rec.warn("chunk_shape", f"event {seq + 1}: content_block_start without an index or block: ignored")
            return
        if index in blocks:
            rec.warn("block_order", f"event {seq + 1}: block {index} started twice; the later one is kept")
            for field in ("text", "thinking"):
                self.pieces.pop((index, field), None)
            self.inputs.pop(index, None)
        blocks[index] = dict(block)
        kind = block.get("type")
        if kind == "fallback" and self.message is not None:
            served = block.get("to")
            if isinstance(served, dict) and isinstance(served.get("model"), str):
                self.message["model"] = served["model"]  # as the non-streaming message names it
        if block.get("text") or block.get("thinking"):
            self.marks.token(seq, bool(block.get("text")))
        elif isinstance(kind, str) and (kind in TOOL_INPUT_BLOCKS or kind == "redacted_thinking"):
            self.marks.token(seq, False)

    def start_message(self, start: Any, seq: int) -> None:
        """`message_start`: the message with empty content and the prompt's usage."""
        if not isinstance(start, dict):
            self.rec.warn("chunk_shape", f"event {seq + 1}: message_start without a message: ignored")
            return
        if self.message is not None:
            self.rec.warn("message_restarted", f"event {seq + 1}: a second message_start; its fields are merged in")
            self.message.update({k: v for k, v in start.items() if k != "content"})
            return
        self.message = message = dict(start)
        usage, content = start.get("usage"), start.get("content")
        if type(usage) is dict:
            message["usage"] = dict(usage)
        if content:  # a prefilled start
            for index, block in enumerate(as_list(content)):
                if type(block) is dict:
                    self.blocks[index] = dict(block)

    def end_message(self, delta: Any, usage: Any, extra: dict[str, Any], seq: int) -> None:
        """`message_delta`: the stop reason, cumulative usage, and other top-level fields."""
        if self.message is None:
            self.message = {}
            self.rec.warn("block_order", f"event {seq + 1}: message_delta before message_start")
        message = self.message
        if isinstance(delta, dict):
            for key in ("stop_reason", "stop_sequence", "stop_details"):
                message[key] = delta.get(key)
            for key, value in delta.items():
                if key not in ("stop_reason", "stop_sequence", "stop_details") and value is not None:
                    message[key] = value
        if isinstance(usage, dict):
            # Cumulative totals: each figure given replaces the one before; one left out keeps it.
            merged = message.get("usage")
            merged = dict(merged) if type(merged) is dict else {}
            for key, value in usage.items():
                if value is not None:
                    merged[key] = value
            message["usage"] = merged
        for key, value in extra.items():
            if value is not None:
                message[key] = value  # e.g. context_management

    def finish(self, exchange: Exchange) -> Reconstruction:
        rec, blocks = self.rec, self.blocks
        if self.pings:
            rec.extras["pings"] = self.pings
        for name, count in self.unknown.items():
            rec.warn("unknown_event", f"{count} event(s) of unknown type {name!r}: kept in the chunks, not interpreted")
        for (index, field), found in self.pieces.items():
            block = blocks[index]
            block[field] = as_text(block.get(field)) + "".join(found)
        for index, pieces in self.inputs.items():  # only started blocks have pieces
            _final_input(blocks[index], pieces, rec)
        for index, block in blocks.items():
            _typed_by_its_deltas(index, block, rec)
        message = self.message if self.message is not None else {}
        message["content"] = list(map(blocks.__getitem__, sorted(blocks)))  # in index order
        _apply(rec, message)
        rec.marks = self.marks.as_dict()
        ending(exchange, rec, rec.done, "message_stop")
        server = rec.choices[0].extras.get("server_tools")  # where a block without a type lands
        if rec.done and server and any(block.get("type") is None for block in server):
            rec.warn("chunk_shape", "a content block without a type")
        return rec


def _typed_by_its_deltas(index: int, block: dict[str, Any], rec: Reconstruction) -> None:
    """A block whose `type` is no name (a list, a number) but whose deltas were text or
    thinking: read as that, with a warning, rather than lose its text."""
    kind = block.get("type")
    if isinstance(kind, str) or kind is None:
        return
    for field in ("text", "thinking"):
        if isinstance(block.get(field), str) and block[field]:
            block["type"] = field
            rec.warn(
                "chunk_shape", f"block {index}: its type {shown(kind)} is no name: read as {field}, as its deltas were"
            )
            return


def reconstruct_stream(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    fold = _Fold(rec)
    typed = _typed_events(exchange, rec)
    if typed is not None:  # the fast path: the deltas' text straight from typed events
        kept, times = typed
        text, to_builtins = fold.text, msgspec.to_builtins
        pings: list[int] = []  # where they are: pings are no chunks (usually one, after message_start)
        # The pieces list the last text, thinking or tool input delta went to, once a piece
        # of it was text (so the marks have their first token): the next one for the same
        # block and kind is appended without a lookup, and `last` is where it was.
        same_index, same_kind, same_pieces, last = None, None, None, None
        for at, event in enumerate(kept):
            kind = event.__class__
            if kind is BlockDelta:
                delta = event.delta
                delta_kind = delta.__class__
                if delta_kind is same_kind and event.index == same_index:
                    if delta_kind is TextDelta:
                        piece = delta.text
                    else:
                        piece = delta.thinking if delta_kind is ThinkingDelta else delta.partial_json
                    if piece:
                        same_pieces.append(piece)  # type: ignore[union-attr]
                        last = at
                    continue
            elif kind is BlockStop:
                continue
            elif kind is Ping:
                pings.append(at)
                continue
            seq = at - len(pings)  # the chunk's number
            if kind is BlockDelta:
                if delta_kind is TextDelta or delta_kind is ThinkingDelta:
                    field = "text" if delta_kind is TextDelta else "thinking"
                    text(event.index, field, getattr(delta, field), seq)
                    found = fold.pieces.get((event.index, field))
                    if found is not None:
                        same_index, same_kind, same_pieces = event.index, delta_kind, found
                    continue
                if delta_kind is InputJsonDelta:
                    fold.tool_input(event.index, delta.partial_json, seq)
                    found = fold.inputs.get(event.index)
                    if found is not None and delta.partial_json:
                        same_index, same_kind, same_pieces = event.index, delta_kind, found
                    continue
            # The typed fields are of their declared types, and these steps read everything
            # inside as of any type: no field can make them raise, so no per-event guard.
            elif kind is BlockStart:
                fold.start_block(event.index, event.content_block, seq)
                same_kind = None  # a block started again drops its pieces: look them up anew
                continue
            elif kind is MessageStart:
                fold.start_message(event.message, seq)
                continue
            elif kind is MessageDelta:
                managed = event.context_management
                fold.end_message(event.delta, event.usage, {} if managed is msgspec.UNSET else {"context_management": managed}, seq)  # fmt: skip
                continue
            elif kind is MessageStop:
                rec.done = True
                continue
            payload = to_builtins(event)
            guarded(fold.rec, seq, fold.add, payload, payload["type"], seq)
        if pings:
            fold.pings = len(pings)
            if last is not None:
                last -= bisect_left(pings, last)
            if len(pings) < 8:
                for at in reversed(pings):
                    del kept[at], times[at]
            else:  # a long stream's keep-alives: not one deletion (a move of the rest) each
                wanted = [True] * len(kept)
                for at in pings:
                    wanted[at] = False
                kept, times = list(compress(kept, wanted)), list(compress(times, wanted))
        rec.chunks = numbered_chunks(times, kept)
        if last is not None and (fold.marks.last_token is None or last > fold.marks.last_token):
            fold.marks.last_token = last
        return fold.finish(exchange)
    chunks = rec.chunks  # the general path: the events as dicts, one by one
    append = chunks.append
    for t_ms, name, payload in stream_payloads(exchange, rec):
        if type(payload) is not dict:
            rec.warn("chunk_shape", f"event {len(chunks) + 1}: a {type(payload).__name__}, not an object: ignored")
            continue
        kind = payload.get("type") or name
        if kind == "ping":
            fold.pings += 1
            continue
        seq = len(chunks)
        append(StreamChunk(seq=seq, t_ms=t_ms, payload=payload))
        guarded(fold.rec, seq, fold.add, payload, kind, seq)
    return fold.finish(exchange)


def _typed_events(exchange: Exchange, rec: Reconstruction) -> tuple[list[Any], list[Any]] | None:
    """The stream's events decoded typed, when every one is a common event (`typed_events`)."""
    return typed_events(exchange, rec, _decode_typed)


def _final_input(block: dict[str, Any], pieces: list[str], rec: Reconstruction) -> None:
    """A tool block's input from its input_json_delta pieces, parsed once whole."""
    text = "".join(pieces)
    if text and isinstance(block.get("type"), str) and block["type"] in TOOL_INPUT_BLOCKS:
        try:
            block["input"] = loads_exact(text)
        except ValueError as exc:
            block["input"] = text
            rec.warn("tool_input_unparsed", f"tool {block.get('name')!r}: its input is not whole JSON ({exc})")


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
    get = message.get
    kind, ident, model = get("type"), get("id"), get("model")
    rec.native = message
    rec.object = kind if isinstance(kind, str) else "message"
    rec.id = ident if isinstance(ident, str) else None
    if model and isinstance(model, str):
        rec.served_model = model
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[Any] = []
    calls = []
    citations: list[Any] = []
    server: list[Any] = []
    for block in as_list(get("content")):
        if type(block) is not dict:
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(as_text(block.get("text")))
            if "citations" in block:
                citations += as_list(block["citations"])
        elif kind == "thinking":
            thinking = block.get("thinking")
            thoughts.append(as_text(thinking))
            details.append({"type": "thinking", "thinking": thinking, "signature": block.get("signature")})
        elif kind == "redacted_thinking":
            details.append({"type": "redacted_thinking", "data": block.get("data")})
        elif kind == "tool_use":
            arguments = block.get("input")
            text = arguments if isinstance(arguments, str) else json_text(arguments if arguments is not None else {})
            calls.append(tool_call(len(calls), block.get("id"), block.get("name"), text))
        else:  # server_tool_use, mcp_tool_use and the result blocks: done by the provider
            server.append(block)
    stop, sequence = get("stop_reason"), get("stop_sequence")
    extras: dict[str, Any] = {}
    if server:
        extras["server_tools"] = server
    if stop is not None:
        extras["stop_reason"] = stop
    if sequence:
        extras["stop_sequence"] = sequence
    role = get("role") or "assistant"
    content = "".join(texts) if texts else None
    reasoning = "\n\n".join(thoughts) if thoughts else None
    finish = FINISH_REASONS.get(stop, stop) if isinstance(stop, str) else None
    rec.choices = [
        Choice(
            index=0,
            role=role,
            content=content,
            reasoning=reasoning,
            reasoning_source="thinking" if thoughts else None,
            reasoning_details=details,
            tool_calls=calls,
            finish_reason=finish,
            annotations=citations,
            extras=extras,
        )
    ]
    usage = get("usage")
    if isinstance(usage, dict):
        rec.usage = normalise_usage(usage)
    for key in ("container", "context_management", "stop_details"):
        value = get(key)
        if value is not None:
            rec.extras[key] = value


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
            return [Part(0, "extra", dumps_exact(delta))]
        return []
    if kind == "content_block_start":
        block = payload.get("content_block") or {}
        if block.get("type") == "tool_use":
            return [Part(0, "tool_call", "")]
        if block.get("text"):
            return [Part(0, "content", block["text"])]
        if block.get("type") not in ("text", "thinking"):
            return [Part(0, "extra", dumps_exact(block))]
        return []
    if kind == "message_start":
        message = payload.get("message") or {}
        parts = [Part(0, "role", message.get("role") or "assistant")]
        if message.get("usage"):
            parts.append(Part(None, "usage", dumps_exact(message["usage"])))
        return parts
    if kind == "message_delta" and payload.get("usage"):
        return [Part(None, "usage", dumps_exact(payload["usage"]))]
    if kind == "error":
        return [Part(None, "error", dumps_exact(payload.get("error", payload)))]
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
    for message in as_list(body.get("messages")):
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
                texts.append(as_text(block.get("text")))
            elif kind == "thinking":
                thoughts.append(as_text(block.get("thinking")))
            elif kind == "tool_use":
                calls.append(history_call(block.get("id"), block.get("name"), block.get("input")))
            elif kind == "tool_result":
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.get("tool_use_id"),
                        "content": content_text(block.get("content")),
                    }
                )
            elif kind not in ("redacted_thinking",):
                texts.append(f"[{shown(kind)}]")
        text = "".join(texts) if role == "assistant" else "\n".join(texts)
        history_turn(out, role, text, "\n\n".join(thoughts), calls, results)
    return out


def request_tools(body: Any) -> list[dict[str, Any]]:
    """Tools offered, as chat/completions function tools (server tools keep their own shape)."""
    tools = body.get("tools") if isinstance(body, dict) else None
    out = []
    for tool in as_list(tools):
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
