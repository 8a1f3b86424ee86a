"""Seeded generator of valid Anthropic Messages streams, framed as SSE bodies.

Written from Anthropic's streaming guide and the Messages API reference:
https://docs.anthropic.com/en/docs/build-with-claude/streaming
https://docs.anthropic.com/en/api/messages
https://docs.anthropic.com/en/api/messages-streaming

A stream is `message_start` (the message with empty content and the prompt's usage),
then per content block `content_block_start`, its deltas and `content_block_stop`, in
index order; then `message_delta` (stop reason, cumulative usage) and `message_stop`.
`ping` events may come anywhere after `message_start`; an `error` event (e.g.
`overloaded_error`) may end a stream early. Every event is `event: <type>` then
`data: <json>` then a blank line.

`generate(seed)` returns the body bytes, every payload in the order sent (so the SDK's
accumulator can be fed the same events), where in the body each event starts, where its
JSON ends and where it is dispatched (so a test can cut the body after or inside any
event), and the final message as the stream says it (blocks by index). The same seed
always gives the same stream. `reads()` cuts a body into network reads.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamgen

# What the model "says" (shared with the chat/completions generator): every script,
# emoji sequences, combining marks, characters JSON must escape, and text that looks
# like SSE framing.
TEXT_ATOMS = streamgen.TEXT_ATOMS
MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-3-5-haiku-20241022", "claude-haiku-4-5")
TOOL_NAMES = ("get_weather", "search_docs", "lookup_order", "run_sql", "read_file", "updateIssueList", "calc")
INPUT_KEYS = ("location", "query", "unit", "limit", "filters", "note", "path", "sql", "to", "body", "x")
# Stop reasons a stream without tool calls can end with (Messages API reference, `stop_reason`).
TEXT_STOPS = ("end_turn", "end_turn", "end_turn", "max_tokens", "stop_sequence", "refusal")
STOP_SEQUENCES = ("\n\nHuman:", "END", "</answer>", "###", "停")
BASE64 = string.ascii_letters + string.digits + "+/"
BASE62 = string.ascii_letters + string.digits


@dataclass(slots=True)
class GeneratedStream:
    seed: int
    body: bytes
    # Every payload in the order sent: pings and an error event included.
    events: list[dict[str, Any]]
    # Per event, byte offsets into `body`: where its first line starts; just past the
    # closing brace of its JSON (a body cut there or later holds the whole payload, its
    # line end and blank line perhaps missing); just past the first character of the
    # blank line that ends it (the read reaching this offset is the one that completes
    # the event); just past that blank line.
    event_starts: list[int]
    data_ends: list[int]
    completed_at: list[int]
    event_ends: list[int]
    # The final message as the stream says it: message_start's fields, blocks in index
    # order with deltas applied and tool input parsed, message_delta's stop fields and
    # usage (each figure given replacing the one before). None when an error cut it short.
    message: dict[str, Any] | None
    # The error event's `error` object, when the stream ends with one.
    error: dict[str, Any] | None
    # How the body was framed, for failure messages.
    framing: str

    def sdk_events(self, count: int | None = None) -> list[dict[str, Any]]:
        """The first `count` events (all by default) as the SDK's stream hands them to its
        accumulator: it skips `ping` events and raises at an `error` event."""
        out = []
        for event in self.events[:count]:
            if event["type"] == "error":
                break
            if event["type"] != "ping":
                out.append(event)
        return out


def generate(seed: int, *, error: bool = False) -> GeneratedStream:
    """A valid Messages stream; with `error`, an `error` event ends it somewhere after message_start."""
    rng = random.Random(seed)
    start_usage = _start_usage(rng)
    start = {
        "id": "msg_01" + _token(rng, 22),
        "type": "message",
        "role": "assistant",
        "model": rng.choice(MODELS),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    if rng.random() < 0.2:  # newer API versions send these too, null at the start
        start["stop_details"] = None
    if rng.random() < 0.3:  # field order is not fixed
        keys = list(start)
        rng.shuffle(keys)
        start = {key: start[key] for key in keys}

    blocks = _blocks(rng)
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    content: list[dict[str, Any]] = []
    for index, (block, deltas, final) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.extend({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas)
        events.append({"type": "content_block_stop", "index": index})
        content.append(final)

    has_tool_use = any(block["type"] == "tool_use" for block, _, _ in blocks)
    stop_reason = "tool_use" if has_tool_use else rng.choice(TEXT_STOPS)
    delta: dict[str, Any] = {
        "stop_reason": stop_reason,
        "stop_sequence": rng.choice(STOP_SEQUENCES) if stop_reason == "stop_sequence" else None,
    }
    if stop_reason == "refusal" and rng.random() < 0.5:
        delta["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": None}
    elif rng.random() < 0.3:
        delta["stop_details"] = None
    searches = sum(1 for block, _, _ in blocks if block["type"] == "server_tool_use")
    delta_usage = _delta_usage(rng, start_usage, searches)
    events.append({"type": "message_delta", "delta": delta, "usage": delta_usage})
    events.append({"type": "message_stop"})

    usage = {**start_usage, **{key: value for key, value in delta_usage.items() if value is not None}}
    message: dict[str, Any] | None = {**start, "content": content, "stop_details": None, **delta, "usage": usage}

    error_object = None
    if error:
        cut = rng.randint(1, len(events) - 1)  # after message_start, before message_stop at the latest
        error_object = {"type": "overloaded_error", "message": "Overloaded"}
        error_event: dict[str, Any] = {"type": "error", "error": error_object}
        if rng.random() < 0.5:
            error_event["request_id"] = "req_011C" + _token(rng, 20)
        events = [*events[:cut], error_event]
        message = None

    # Pings anywhere after message_start (the streaming guide: "dispersed throughout").
    for _ in range(rng.choice((0, 0, 1, 2, 5, 12))):  # 12: past the fold's few-pings case
        events.insert(rng.randint(1, len(events) - 1), {"type": "ping"})

    framed = _frame(events, rng)
    return GeneratedStream(
        seed=seed,
        body=framed.body,
        events=events,
        event_starts=framed.starts,
        data_ends=framed.data_ends,
        completed_at=framed.completed_at,
        event_ends=framed.ends,
        message=message,
        error=error_object,
        framing=framed.framing,
    )


def reads(body: bytes, rng: random.Random) -> list[tuple[float, int]]:
    """`Response.chunks` for `body` cut into network reads at random offsets, often inside
    a UTF-8 character or next to a line end."""
    return streamgen.network_reads(body, streamgen.split_points(body, rng), rng)


def _token(rng: random.Random, length: int, alphabet: str = BASE62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _text(rng: random.Random, low: int = 1, high: int = 30) -> str:
    return "".join(rng.choice(TEXT_ATOMS) for _ in range(rng.randint(low, high)))


def _cut(rng: random.Random, text: str, max_piece: int = 6) -> list[str]:
    """`text` cut at code points (so inside emoji sequences and combining marks) into
    pieces of 1..max_piece characters, a few empty ones among them."""
    pieces: list[str] = []
    position = 0
    while position < len(text):
        if rng.random() < 0.05:
            pieces.append("")
        size = rng.randint(1, max_piece)
        pieces.append(text[position : position + size])
        position += size
    return pieces


def _cut_json(rng: random.Random, text: str) -> list[str]:
    """JSON text cut into `partial_json` pieces: anywhere, often right after a backslash
    (between `\\` and `"`, `n`, `u`…) or inside a `\\uXXXX` escape; a few empty pieces."""
    cuts = {i + 1 for i, char in enumerate(text) if char == "\\" and rng.random() < 0.5}
    cuts |= {m.start() + rng.randint(2, 5) for m in re.finditer(r"\\u", text) if rng.random() < 0.5}
    position = 0
    while position < len(text):
        position += rng.randint(1, 12)
        cuts.add(position)
    bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(text)), len(text)]
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    for _ in range(rng.choice((0, 0, 1, 2))):
        pieces.insert(rng.randint(0, len(pieces)), "")
    return pieces


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind <= 1:
        return _text(rng, 0, 8)
    if kind == 2:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 3:
        return rng.choice((0.5, -1.25, 3.0e-7, 1e21, 98.6, 0.1))
    if kind == 4:
        return rng.choice((True, False, None))
    if kind == 5:
        return [_text(rng, 0, 3) for _ in range(rng.randint(0, 3))]
    return {rng.choice(INPUT_KEYS): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _input(rng: random.Random) -> dict[str, Any]:
    return {rng.choice(INPUT_KEYS): _value(rng, 0) for _ in range(rng.randint(1, 4))}


def _input_deltas(rng: random.Random, value: dict[str, Any]) -> list[dict[str, Any]]:
    """A tool's input as input_json_delta pieces: its JSON text (either escaping style,
    either spacing) cut anywhere; an empty input as one empty piece, several, or none."""
    if not value:
        return [{"type": "input_json_delta", "partial_json": ""} for _ in range(rng.choice((0, 1, 1, 2)))]
    separators = rng.choice(((",", ":"), (", ", ": ")))
    text = json.dumps(value, ensure_ascii=rng.random() < 0.4, separators=separators)
    return [{"type": "input_json_delta", "partial_json": piece} for piece in _cut_json(rng, text)]


def _text_deltas(rng: random.Random, text: str) -> list[dict[str, Any]]:
    return [{"type": "text_delta", "text": piece} for piece in _cut(rng, text)]


Block = tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]  # start, deltas, final


def _thinking(rng: random.Random) -> Block:
    thinking = _text(rng, 1, 40)
    deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _cut(rng, thinking)]
    if rng.random() < 0.5:  # real streams send an empty thinking_delta before the signature
        deltas.append({"type": "thinking_delta", "thinking": ""})
    signature = _token(rng, rng.randint(40, 300), BASE64) + "=="
    deltas.append({"type": "signature_delta", "signature": signature})
    start = {"type": "thinking", "thinking": "", "signature": ""}
    return start, deltas, {"type": "thinking", "thinking": thinking, "signature": signature}


def _redacted_thinking(rng: random.Random) -> Block:
    data = _token(rng, rng.randint(20, 200), BASE64)
    block = {"type": "redacted_thinking", "data": data}
    return dict(block), [], block


def _text_block(rng: random.Random, citations: list[dict[str, Any]] | None = None) -> Block:
    """A text block; with `citations` (possibly none), one that may cite: `citations: []`
    at the start and a citations_delta before the text each cites."""
    text = _text(rng, 0 if rng.random() < 0.05 else 1, 60)
    deltas = _text_deltas(rng, text)
    if rng.random() < 0.05:
        deltas.insert(rng.randint(0, len(deltas)), {"type": "text_delta", "text": ""})
    start: dict[str, Any] = {"type": "text", "text": ""}
    final: dict[str, Any] = {"type": "text", "text": text}
    if citations is not None:
        start = {"citations": [], "type": "text", "text": ""}
        for citation in citations:
            deltas.insert(rng.randint(0, len(deltas)), {"type": "citations_delta", "citation": citation})
        cited = [delta["citation"] for delta in deltas if delta["type"] == "citations_delta"]
        final = {"citations": cited, "type": "text", "text": text}
    return start, deltas, final


def _tool_use(rng: random.Random) -> Block:
    value = {} if rng.random() < 0.15 else _input(rng)
    start = {"type": "tool_use", "id": "toolu_01" + _token(rng, 22), "name": rng.choice(TOOL_NAMES), "input": {}}
    return start, _input_deltas(rng, value), {**start, "input": value}


def _web_search(rng: random.Random) -> tuple[list[Block], list[dict[str, Any]]]:
    """A server-side web search: server_tool_use (its input streamed), then the
    web_search_tool_result block whole; and the citations later text may carry."""
    tool_id = "srvtoolu_01" + _token(rng, 22)
    query = {"query": _text(rng, 1, 6)}
    start = {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {}}
    use: Block = (start, _input_deltas(rng, query), {**start, "input": query})
    citations: list[dict[str, Any]] = []
    if rng.random() < 0.2:
        content: Any = {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
    else:
        content = []
        for n in range(rng.randint(1, 3)):
            url = f"https://example.org/{_token(rng, 6).lower()}/{n}"
            title = _text(rng, 1, 5)
            content.append(
                {
                    "type": "web_search_result",
                    "title": title,
                    "url": url,
                    "encrypted_content": _token(rng, rng.randint(30, 120), BASE64),
                    "page_age": rng.choice((None, "3 days ago", "November 15, 2025")),
                }
            )
            citations.append(
                {
                    "type": "web_search_result_location",
                    "cited_text": _text(rng, 1, 10),
                    "url": url,
                    "title": title,
                    "encrypted_index": _token(rng, 40, BASE64),
                }
            )
    result = {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": content}
    return [use, (dict(result), [], result)], citations


def _char_citation(rng: random.Random) -> dict[str, Any]:
    first = rng.randint(0, 500)
    return {
        "type": "char_location",
        "cited_text": _text(rng, 1, 8),
        "document_index": rng.randint(0, 3),
        "document_title": rng.choice((None, "Report", "手册")),
        "start_char_index": first,
        "end_char_index": first + rng.randint(1, 80),
    }


def _blocks(rng: random.Random) -> list[Block]:
    """The content blocks, in the orders the API produces them."""
    blocks: list[Block] = []
    if rng.random() < 0.4:
        blocks.append(_thinking(rng))
    if rng.random() < 0.08:
        blocks.append(_redacted_thinking(rng))
    if rng.random() < 0.2:
        if rng.random() < 0.5:
            blocks.append(_text_block(rng))  # "I'll search for that."
        search, citations = _web_search(rng)
        blocks.extend(search)
        if rng.random() < 0.3:  # interleaved thinking after the tool result
            blocks.append(_thinking(rng))
        for _ in range(rng.randint(1, 4)):
            cited = rng.sample(citations, rng.randint(0, len(citations))) if citations else []
            blocks.append(_text_block(rng, cited if rng.random() < 0.6 else None))
    elif rng.random() < 0.1:
        blocks.append(_text_block(rng, [_char_citation(rng) for _ in range(rng.randint(1, 3))]))
    elif not blocks or rng.random() < 0.85:
        blocks.append(_text_block(rng))
    if rng.random() < 0.3:
        blocks.extend(_tool_use(rng) for _ in range(rng.choice((1, 1, 2, 3))))
    return blocks


def _start_usage(rng: random.Random) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": rng.randint(1, 20000)}
    if rng.random() < 0.6:  # prompt caching fields (present, often zero, on current models)
        written = rng.choice((0, 0, rng.randint(1, 50000)))
        usage["cache_creation_input_tokens"] = written
        usage["cache_read_input_tokens"] = rng.choice((0, 0, rng.randint(1, 90000)))
        if rng.random() < 0.7:
            five_minutes = rng.randint(0, written)
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": five_minutes,
                "ephemeral_1h_input_tokens": written - five_minutes,
            }
    usage["output_tokens"] = rng.randint(1, 5)
    if rng.random() < 0.5:
        usage["service_tier"] = "standard"
    return usage


def _delta_usage(rng: random.Random, start: dict[str, Any], searches: int) -> dict[str, Any]:
    """message_delta's usage: cumulative totals; output_tokens always, the input and cache
    figures again (current API) or left out (older), now and then an explicit null."""
    usage: dict[str, Any] = {}
    if rng.random() < 0.5:
        usage["input_tokens"] = start["input_tokens"]
        for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            if key in start or rng.random() < 0.3:
                usage[key] = start.get(key, 0)
    elif rng.random() < 0.2:
        usage["cache_read_input_tokens"] = None
    usage["output_tokens"] = start["output_tokens"] + rng.randint(0, 4000)
    if searches:
        usage["server_tool_use"] = {"web_search_requests": searches}
    return usage


@dataclass(slots=True)
class _Framed:
    body: bytes
    starts: list[int]
    data_ends: list[int]
    completed_at: list[int]
    ends: list[int]
    framing: str


def _frame(events: Sequence[dict[str, Any]], rng: random.Random) -> _Framed:
    """`event: <type>` / `data: <json>` / blank line per event, with valid variations:
    line ends, escaping, spacing, `data:` without its space, whitespace around the JSON
    (Anthropic pads some payloads with trailing spaces), now and then a payload
    pretty-printed over several `data:` lines."""
    line_end = rng.choice(("\n", "\n", "\n", "\r\n", "\r"))
    ensure_ascii = rng.random() < 0.3
    separators = rng.choice(((",", ":"), (", ", ": ")))
    padded = rng.random() < 0.3
    # Half the streams framed every event alike, as api.anthropic.com does (which is what
    # chatcap's fast path takes); the rest vary event by event.
    varied = rng.random() < 0.5
    framing = (
        f"line_end={line_end!r} ensure_ascii={ensure_ascii} separators={separators} padded={padded} varied={varied}"
    )
    out = bytearray()
    starts: list[int] = []
    data_ends: list[int] = []
    completed_at: list[int] = []
    ends: list[int] = []
    for payload in events:
        starts.append(len(out))
        space = "" if varied and rng.random() < 0.1 else " "
        out += f"event:{space}{payload['type']}{line_end}".encode()
        indent = rng.choice((1, 2)) if varied and rng.random() < 0.03 else None
        lines = json.dumps(payload, ensure_ascii=ensure_ascii, separators=separators, indent=indent).split("\n")
        if varied and rng.random() < 0.05:
            lines[0] = rng.choice((" ", "\t")) + lines[0]
        padding = " " * rng.randint(1, 16) if padded and rng.random() < 0.7 else ""
        for number, text in enumerate(lines):
            out += f"data:{space}{text}".encode()
            if number == len(lines) - 1:
                data_ends.append(len(out))
                out += padding.encode()
            out += line_end.encode()
        completed_at.append(len(out) + 1)
        out += line_end.encode()
        ends.append(len(out))
    return _Framed(bytes(out), starts, data_ends, completed_at, ends, framing)
