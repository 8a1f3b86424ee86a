"""The fast paths never change a reconstruction: for any body, however it breaks the
dominant `data: {…}` line shape, reconstructing with the whole-stream fast paths on gives
exactly what the general SSE decoder (then one JSON parse per payload) gives with them off.

The bodies are built with hypothesis from a few well-formed events per protocol, framed
with or without `event:` lines and with LF or CRLF line ends, and then broken the ways a
line-based shortcut could miss: a lone CR or LF anywhere (inside JSON whitespace too), a
JSON value split across two events or two values joined on one line, `data:` without its
space, a second `data:` line, comments, `id:`/`retry:` lines, an `event:` line after the
data, empty events, no final blank line, a BOM, invalid UTF-8, a NUL, payloads that are no
object, integers beyond 64 bits, `[DONE]`, whitespace-only lines, odd event names; and
read at arbitrary byte splits (the fast paths time each event from the reads themselves).

Payloads are written from the protocols' streaming references:
https://platform.openai.com/docs/api-reference/chat-streaming
https://docs.anthropic.com/en/docs/build-with-claude/streaming
https://platform.openai.com/docs/api-reference/responses-streaming
https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
and framed by the event-stream grammar:
https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgspec
import orjson
import pytest
import streamgen
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from analyzer.model import Choice, Exchange, Reconstruction, Request, Response, StreamChunk, ToolCall, Usage
from analyzer.protocols import anthropic, chunk_parts, events, openai_chat
from analyzer.protocols.events import payload_of

URLS = {
    "openai_chat": "https://api.openai.com/v1/chat/completions",
    "anthropic_messages": "https://api.anthropic.com/v1/messages",
    "openai_responses": "https://api.openai.com/v1/responses",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
}
PROTOCOLS = sorted(URLS)

# One well-formed stream per protocol, in the order its reference shows the events.
# The text carries what a line-based reader must leave alone: multi-byte characters,
# U+2028 (a line end to str.splitlines(), not to SSE or JSON), escaped quotes and a `}`.
TEXT = ["Hel", "lo, wörld \u2028 😀", ' {"a": "}"}\n']
STREAMS: dict[str, list[dict[str, Any]]] = {
    "openai_chat": [
        {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1718000000, "model": "gpt-4o-mini",
         "system_fingerprint": "fp_1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "",
         "refusal": None}, "logprobs": None, "finish_reason": None}]},
        *[{"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1718000000, "model": "gpt-4o-mini",
           "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]}
          for text in TEXT],
        {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1718000001, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}]}, "logprobs": None, "finish_reason": None}]},
        {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1718000001, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Par'}}]},
         "logprobs": None, "finish_reason": None}]},
        {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1718000001, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]},
        {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1718000001, "model": "gpt-4o-mini",
         "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
         "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}},
    ],
    "anthropic_messages": [
        {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [],
         "model": "claude-sonnet-4-5", "stop_reason": None, "stop_sequence": None,
         "usage": {"input_tokens": 25, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Paris?"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *[{"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": text}} for text in TEXT],
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 'ris"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 15}},
        {"type": "message_stop"},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ],
    "openai_responses": [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "object": "response",
         "created_at": 1741290958, "status": "in_progress", "model": "gpt-4.1", "output": [], "usage": None}},
        {"type": "response.in_progress", "sequence_number": 1, "response": {"id": "resp_1", "object": "response",
         "created_at": 1741290958, "status": "in_progress", "model": "gpt-4.1", "output": [], "usage": None}},
        {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
         "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
        {"type": "response.reasoning_summary_part.added", "sequence_number": 3, "item_id": "rs_1", "output_index": 0,
         "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
        {"type": "response.reasoning_summary_text.delta", "sequence_number": 4, "item_id": "rs_1", "output_index": 0,
         "summary_index": 0, "delta": "Weighing it up"},
        {"type": "response.reasoning_summary_text.done", "sequence_number": 5, "item_id": "rs_1", "output_index": 0,
         "summary_index": 0, "text": "Weighing it up"},
        {"type": "response.output_item.added", "sequence_number": 6, "output_index": 1,
         "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", "sequence_number": 7, "item_id": "msg_1", "output_index": 1,
         "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
        *[{"type": "response.output_text.delta", "sequence_number": 8 + n, "item_id": "msg_1", "output_index": 1,
           "content_index": 0, "delta": text, "logprobs": []} for n, text in enumerate(TEXT)],
        {"type": "response.output_text.done", "sequence_number": 11, "item_id": "msg_1", "output_index": 1,
         "content_index": 0, "text": "".join(TEXT), "logprobs": []},
        {"type": "response.content_part.done", "sequence_number": 12, "item_id": "msg_1", "output_index": 1,
         "content_index": 0, "part": {"type": "output_text", "text": "".join(TEXT), "annotations": []}},
        {"type": "response.output_item.done", "sequence_number": 13, "output_index": 1,
         "item": {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                  "content": [{"type": "output_text", "text": "".join(TEXT), "annotations": []}]}},
        {"type": "response.output_item.added", "sequence_number": 14, "output_index": 2,
         "item": {"id": "fc_1", "type": "function_call", "status": "in_progress", "call_id": "call_1",
                  "name": "get_weather", "arguments": ""}},
        *[{"type": "response.function_call_arguments.delta", "sequence_number": 15 + n, "item_id": "fc_1",
           "output_index": 2, "delta": piece} for n, piece in enumerate(('{"city": ', '"Paris"}'))],
        {"type": "response.function_call_arguments.done", "sequence_number": 17, "item_id": "fc_1",
         "output_index": 2, "arguments": '{"city": "Paris"}'},
        {"type": "response.completed", "sequence_number": 18, "response": {"id": "resp_1", "object": "response",
         "created_at": 1741290958, "status": "completed", "model": "gpt-4.1", "output": [
             {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Weighing it up"}]},
             {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
              "content": [{"type": "output_text", "text": "".join(TEXT), "annotations": []}]},
             {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
              "name": "get_weather", "arguments": '{"city": "Paris"}'}],
         "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
                   "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 123}}},
        {"type": "error", "sequence_number": 19, "code": "server_error", "message": "The server had an error"},
    ],
    # With thinking on, candidateCount 2, and Vertex AI's streamed function call arguments.
    "gemini": [
        {"candidates": [{"content": {"parts": [{"text": "Weighing it up", "thought": True}], "role": "model"},
         "index": 0}], "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
         "modelVersion": "gemini-2.5-flash", "responseId": "r-1"},
        {"candidates": [{"content": {"parts": [{"text": "", "thoughtSignature": "CpMBAXLI2nw"}], "role": "model"},
         "index": 0}], "modelVersion": "gemini-2.5-flash", "responseId": "r-1"},
        *[{"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
           "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
           "modelVersion": "gemini-2.5-flash", "responseId": "r-1"} for text in TEXT],
        {"candidates": [{"content": {"parts": [{"text": "Other"}], "role": "model"}, "finishReason": "STOP",
                         "index": 1}],
         "modelVersion": "gemini-2.5-flash", "responseId": "r-1"},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
         "role": "model"}, "index": 0}], "modelVersion": "gemini-2.5-flash", "responseId": "r-1"},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_time", "partialArgs": [
            {"jsonPath": "$.city", "stringValue": "Par", "willContinue": True}], "willContinue": True}}],
         "role": "model"}, "index": 0}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"partialArgs": [
            {"jsonPath": "$.city", "stringValue": "is"}]}}], "role": "model"}, "index": 0}]},
        {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 5, "totalTokenCount": 25,
                           "thoughtsTokenCount": 12}, "modelVersion": "gemini-2.5-flash", "responseId": "r-1"},
    ],
}  # fmt: skip
# Anthropic and the Responses API name each event twice: in an `event:` line and in the
# payload's `type`. Chat/completions and Gemini send no `event:` line.
NAMED = {"anthropic_messages", "openai_responses"}

# Data that is no JSON object, or a marker.
ODD_DATA = (b"[DONE]", b"[]", b'[{"type": "message_stop"}]', b'"text"', b"42", b"null", b"true", b"", b" ", b"{}")
# Integers a 64-bit parser cannot hold exactly, and numbers at the edges of a double.
ODD_NUMBERS = (b"18446744073709551617", b"1180591620717411303427", b"-9223372036854775809", b"1e-400", b"1E2", b"-0")
# Strings JSON must not carry raw, or that a surrogate escape leaves half.
ODD_STRINGS = (b'"\xff"', b'"a\x00b"', b'"a\tb"', b'"\\ud83d"', b'"\\ud83d\\ude00"', b'"\\u0000"', b'"\xed\xa0\x80"')
ODD_NAMES = (b'a"b\\c', b"", b"message_stop", b"response.completed", b"\xff")
INSERTS = (b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b" ", b"\t", b"\xef\xbb\xbf")
# Breaks of the payloads that keep the dominant shape (the fast path still takes the body)...
VALUE_MUTATIONS = (
    "odd_data",
    "odd_number",
    "odd_string",
    "odd_name",
    "untyped",
    "duplicate_key",
    "data_with_two_spaces",
)
# ...and breaks of the shape (it must decline the body, or read it as the general decoder does).
SHAPE_MUTATIONS = (
    "insert_byte", "delete_byte", "split_value", "join_values", "data_without_space", "second_data_line", "comment",
    "id_line", "retry_line", "event_after_data", "empty_event", "blank_line", "no_final_blank_line", "bom", "done",
    "whitespace_line", "other_line_end",
)  # fmt: skip
# A key again at the start of an object: JSON parsers keep the last value.
DUPLICATE_KEYS = (b'"type":"ping",', b'"type":null,', b'"index":3,', b'"choices":null,', b'"candidates":[],')

Event = list[bytes]  # the lines of one event, without their line ends


def dumps(payload: dict[str, Any], spaced: bool) -> bytes:
    if spaced:  # spaces after `:` and `,` as Python's json module writes them: JSON whitespace to break
        return msgspec.json.format(orjson.dumps(payload), indent=0)
    return orjson.dumps(payload)


def data_line(event: Event) -> int | None:
    return next((n for n, line in enumerate(event) if line.startswith(b"data:")), None)


def structural(data: bytes) -> list[int]:
    """Offsets in a JSON text between two tokens: where JSON allows whitespace, and where a
    value can be cut into two fragments that join again (`{"a":[{}` + `{}]}`)."""
    return [n for n in range(1, len(data)) if data[n - 1] in b":,{[}]" or data[n] in b"}],"]


@st.composite
def bodies(draw: st.DrawFn, protocol: str) -> tuple[bytes, list[tuple[float, int]] | None]:
    """A body of `protocol`'s events, maybe broken, and the reads it arrived in."""
    stream = STREAMS[protocol]
    if draw(st.booleans()):  # in the protocol's order, cut short or not
        start = draw(st.integers(0, len(stream) - 1))
        payloads = stream[start : draw(st.integers(start + 1, len(stream)))]
    else:
        payloads = draw(st.lists(st.sampled_from(stream), min_size=1, max_size=6))
    mutations = draw(st.lists(st.sampled_from(VALUE_MUTATIONS), max_size=2))
    mutations += draw(st.lists(st.sampled_from(SHAPE_MUTATIONS), max_size=2))
    if "untyped" in mutations:  # the payload's `type` null, empty or missing: only the `event:` line names it
        payloads = [dict(p) for p in payloads]
        victim = payloads[draw(st.integers(0, len(payloads) - 1))]
        kind = draw(st.sampled_from(("null", "empty", "missing")))
        if kind == "missing":
            victim.pop("type", None)
        else:
            victim["type"] = None if kind == "null" else ""
    named = protocol in NAMED and draw(st.booleans())
    spaced = draw(st.booleans())
    evs: list[Event] = []
    for payload in payloads:
        event = [b"data: " + dumps(payload, spaced)]
        if named:
            kind = payload.get("type")
            name = kind if isinstance(kind, str) and kind else draw(st.sampled_from(("message_stop", "response.done")))
            event.insert(0, b"event: " + name.encode())
        evs.append(event)
    if protocol == "openai_chat" and draw(st.booleans()):
        evs.append([b"data: [DONE]"])
    for mutation in mutations:
        mutate(draw, mutation, evs)
    newline = draw(st.sampled_from((b"\n", b"\n", b"\r\n"))) if "other_line_end" not in mutations else b"\r"
    body = b"".join(b"".join(line + newline for line in event) + newline for event in evs)
    for mutation in mutations:
        body = mutate_bytes(draw, mutation, body)
    note(f"mutations={mutations} body={body!r}")
    return body, draw(network_reads(body))


def mutate(draw: st.DrawFn, mutation: str, evs: list[Event]) -> None:
    """Break the events' lines, in place."""
    if not evs:
        return
    n = draw(st.integers(0, len(evs) - 1))
    event = evs[n]
    at = data_line(event)
    if mutation == "split_value" and at is not None:
        # Two events whose payloads join into one JSON value: `{"a":[{},` + `{}]}`, or
        # without the comma `{"a":[{}` + `{}]}`.
        data = event[at][6:]
        cuts = structural(data)
        if cuts:
            cut = draw(st.sampled_from(cuts))
            head, tail = data[:cut], data[cut:]
            if draw(st.booleans()):
                head, tail = head.removesuffix(b","), tail.removeprefix(b",")
            evs[n : n + 1] = [[*event[:at], b"data: " + head], [*event[:at], b"data: " + tail]]
    elif mutation == "join_values" and at is not None and n + 1 < len(evs):
        other = data_line(evs[n + 1])
        if other is not None:  # two JSON values on one data line
            glue = draw(st.sampled_from((b" ", b"", b",", b"\t")))
            event[at] += glue + evs[n + 1][other][6:]
            del evs[n + 1]
    elif mutation == "data_without_space" and at is not None:
        event[at] = b"data:" + event[at][6:]
    elif mutation == "data_with_two_spaces" and at is not None:
        event[at] = b"data:  " + event[at][6:]
    elif mutation == "second_data_line" and at is not None:
        data = event[at][6:]
        cut = draw(st.sampled_from(structural(data) or [len(data)]))
        event[at : at + 1] = [b"data: " + data[:cut], draw(st.sampled_from((b"data: ", b"data:"))) + data[cut:]]
    elif mutation == "comment":
        line = draw(st.sampled_from((b": keep-alive", b":", b": data: {}")))
        if draw(st.booleans()):
            evs.insert(n, [line])
        else:
            event.insert(draw(st.integers(0, len(event))), line)
    elif mutation in ("id_line", "retry_line"):
        lines = (b"id: 7", b"id: 7\x00", b"id:") if mutation == "id_line" else (b"retry: 3000", b"retry: x")
        line = draw(st.sampled_from(lines))
        event.insert(draw(st.integers(0, len(event))), line)
    elif mutation == "event_after_data" and at is not None:
        names = [line for line in event if line.startswith(b"event:")] or [b"event: message_stop"]
        event[:] = [line for line in event if not line.startswith(b"event:")] + names[:1]
    elif mutation == "empty_event":
        evs.insert(n, draw(st.sampled_from(([], [b"data:"], [b"data: "], [b"event: ping"]))))
    elif mutation == "done":
        evs.insert(draw(st.integers(0, len(evs))), [draw(st.sampled_from((b"data: [DONE]", b"data:[DONE]")))])
    elif mutation == "odd_data" and at is not None:
        event[at] = b"data: " + draw(st.sampled_from(ODD_DATA))
    elif mutation == "odd_number" and at is not None:
        numbers = list(re.finditer(rb"(?<=:)\s*-?\d+", event[at]))
        if numbers:
            found = draw(st.sampled_from(numbers))
            event[at] = event[at][: found.start()] + draw(st.sampled_from(ODD_NUMBERS)) + event[at][found.end() :]
    elif mutation == "odd_string" and at is not None:
        strings = list(re.finditer(rb'(?<=:)\s*"(?:[^"\\]|\\.)*"', event[at]))
        if strings:
            found = draw(st.sampled_from(strings))
            event[at] = event[at][: found.start()] + draw(st.sampled_from(ODD_STRINGS)) + event[at][found.end() :]
    elif mutation == "duplicate_key" and at is not None and event[at].startswith(b"data: {"):
        event[at] = b"data: {" + draw(st.sampled_from(DUPLICATE_KEYS)) + event[at][7:]
    elif mutation == "whitespace_line":
        line = draw(st.sampled_from((b" ", b"\t", b"   ", b"data:    ")))
        event.insert(draw(st.integers(0, len(event))), line)
    elif mutation == "odd_name":
        name = b"event: " + draw(st.sampled_from(ODD_NAMES))
        names = [k for k, line in enumerate(event) if line.startswith(b"event:")]
        if names:
            event[names[0]] = name
        else:
            event.insert(0, name)


def mutate_bytes(draw: st.DrawFn, mutation: str, body: bytes) -> bytes:
    """Break the framed body's bytes."""
    if mutation == "insert_byte":
        at = draw(st.one_of(st.integers(0, len(body)), st.sampled_from(structural(body) or [0])))
        return body[:at] + draw(st.sampled_from(INSERTS)) + body[at:]
    if mutation == "delete_byte" and body:
        line_ends = [n for n, byte in enumerate(body) if byte in b"\r\n"]
        at = draw(st.one_of(st.integers(0, len(body) - 1), st.sampled_from(line_ends or [0])))
        return body[:at] + body[at + 1 :]
    if mutation == "blank_line":  # an extra line end somewhere between events
        ends = [m.end() for m in re.finditer(rb"\n\n|\r\n\r\n", body)] or [len(body)]
        at = draw(st.sampled_from(ends))
        return body[:at] + draw(st.sampled_from((b"\n", b"\r\n", b"\r"))) + body[at:]
    if mutation == "no_final_blank_line":
        return body[: len(body) - draw(st.integers(1, 4))]
    if mutation == "bom":
        return b"\xef\xbb\xbf" + body
    return body


@st.composite
def network_reads(draw: st.DrawFn, body: bytes) -> list[tuple[float, int]] | None:
    """None (no timing), or reads ending at increasing offsets, often next to a line end or
    inside a character; usually the last one at the body's end, sometimes short of it (the
    rest arrived untimed)."""
    if not body or draw(st.booleans()):
        return None
    inside = list(range(1, len(body)))
    interesting = [n for n in streamgen.interesting_offsets(body) if 0 < n < len(body)]
    offsets = st.sampled_from(inside) if inside else st.nothing()
    if interesting:
        offsets = st.one_of(offsets, st.sampled_from(interesting), st.sampled_from([n + 1 for n in interesting]))
    ends = sorted({n for n in draw(st.lists(offsets, max_size=8)) if 0 < n < len(body)})
    if draw(st.integers(0, 4)):  # mostly the whole body
        ends.append(len(body))
    reads = []
    t_ms = 0.0
    for end in ends:
        t_ms += draw(st.sampled_from((0.0, 0.5, 12.25, 80.0)))
        reads.append((t_ms, end))
    return reads or None


def exact(value: Any) -> Any:
    """`value` as plain data in which 1 and 1.0 differ (an int beyond 64 bits and the float
    a parser may make of it should not compare equal by accident)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: exact(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (Reconstruction, Choice, ToolCall, Usage)):  # the model: field by field, as a dataclass
        return {name: exact(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, msgspec.Struct):
        return exact(msgspec.to_builtins(value))
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [exact(item) for item in value]
    if isinstance(value, float):
        return ("float", value)
    return value


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [without_nulls(item) for item in value]
    return value


def plain(payload: Any) -> Any:
    """A chunk's payload as plain JSON. A chat/completions chunk is a struct, lean, plain or full
    depending on what the path decoded it as; both read a null field as absent, and the
    lean one a missing `choices` as empty, so nulls and empty `choices` are left out."""
    if isinstance(payload, openai_chat.LeanChunk | openai_chat.PlainChunk | openai_chat.Chunk):
        value = without_nulls(msgspec.to_builtins(payload))
        if value.get("choices") == []:
            del value["choices"]
        return value
    return payload_of(payload)


def parts(rec: Reconstruction, chunk: StreamChunk) -> Any:
    """What frames read from a chunk (`chunk_parts`), or the exception it raised instead."""
    try:
        return chunk_parts(rec, chunk)
    except Exception as exc:
        return f"raised {exc!r}"


def reconstruction(protocol: str, body: bytes, reads: list[tuple[float, int]] | None) -> dict[str, Any]:
    """Everything a reconstruction holds, as plain data."""
    exchange = Exchange(
        id="fuzz",
        source="<fuzz>",
        format="sse-text",
        request=Request(method="POST", url=URLS[protocol], body=None),
        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads),
    )
    rec = exchange.reconstruct()
    state = {name: getattr(rec, name) for name in rec.__struct_fields__}
    state["chunks"] = [(c.seq, c.t_ms, c.created, c.extras, plain(c.payload)) for c in rec.chunks]
    state["parts"] = [parts(rec, chunk) for chunk in rec.chunks]
    state["to_openai"] = rec.to_openai()
    state["to_native"] = rec.to_native()
    return exact(state)


def both_paths(
    protocol: str, body: bytes, reads: list[tuple[float, int]] | None, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fast paths on, fast paths off)."""
    with monkeypatch.context() as patch:
        patch.setattr(openai_chat, "WHOLE_STREAM", True)
        patch.setattr(events, "WHOLE_STREAM", True)
        fast = reconstruction(protocol, body, reads)
        patch.setattr(openai_chat, "WHOLE_STREAM", False)
        patch.setattr(events, "WHOLE_STREAM", False)
        general = reconstruction(protocol, body, reads)
    return fast, general


def differences(fast: dict[str, Any], general: dict[str, Any]) -> str:
    return "\n".join(
        f"{key}:\n  fast:    {fast[key]!r:.600}\n  general: {general[key]!r:.600}"
        for key in fast
        if fast[key] != general[key]
    )


def codes(state: dict[str, Any]) -> list[str]:
    return [warning["code"] for warning in state["warnings"]]


def assert_same(
    protocol: str, body: bytes, reads: list[tuple[float, int]] | None, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The two paths agree on `body`, and neither needed the safety net (which is for
    bugs); returns the reconstruction."""
    fast, general = both_paths(protocol, body, reads, monkeypatch)
    assert fast == general, differences(fast, general)
    assert "reconstruction_failed" not in codes(general), general["warnings"]
    return general


FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@FUZZ
@given(data=st.data())
def test_fast_path_gives_what_the_general_decoder_gives_for_any_body(
    protocol: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, reads = data.draw(bodies(protocol))
    assert_same(protocol, body, reads, monkeypatch)


def sse(payloads: list[dict[str, Any]], named: bool, newline: bytes) -> bytes:
    out = b""
    for payload in payloads:
        if named:
            out += b"event: " + payload["type"].encode() + newline
        out += b"data: " + orjson.dumps(payload) + newline + newline
    return out


def every(body: bytes, step: int) -> list[tuple[float, int]]:
    """Reads of `step` bytes, 10 ms apart."""
    ends = [*range(step, len(body), step), len(body)]
    return [(10.0 * n, end) for n, end in enumerate(ends, 1)]


@pytest.mark.parametrize(
    ("protocol", "named", "newline"),
    [
        ("openai_chat", False, b"\n"),
        ("anthropic_messages", True, b"\n"),
        ("anthropic_messages", False, b"\r\n"),
        ("openai_responses", True, b"\r\n"),
        ("openai_responses", False, b"\n"),
        ("gemini", False, b"\n"),
        ("gemini", False, b"\r\n"),
    ],
)
def test_well_formed_streams_take_the_fast_path(
    protocol: str, named: bool, newline: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fuzz compares two different code paths: the dominant shapes do take the fast one."""
    payloads = [p for p in STREAMS[protocol] if p.get("type") != "error"]
    body = sse(payloads, named, newline) + (b"data: [DONE]\n\n" if protocol == "openai_chat" else b"")
    reads = every(body, 7)
    if protocol == "openai_chat":
        assert openai_chat._whole_stream(body, reads) is not None
    elif protocol == "anthropic_messages":
        response = Response(status=200, headers=[], body=body, chunks=reads)
        exchange = Exchange(id="x", source="<test>", format="sse-text", request=None, response=response)
        assert anthropic._typed_events(exchange, Reconstruction(protocol=protocol, streamed=True)) is not None
    else:
        assert events.whole_stream(body, reads, Reconstruction(protocol=protocol, streamed=True)) is not None
    rec = assert_same(protocol, body, reads, monkeypatch)
    assert rec["warnings"] == [] and len(rec["chunks"]) >= len(payloads) - 1  # Anthropic's ping is no chunk


# One small event per protocol.
MINIMAL = {
    "openai_chat": b'{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}',
    "anthropic_messages": b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}',
    "openai_responses": b'{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"Hi"}',
    "gemini": b'{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}',
}
# A JSON value holding an array of objects, cut between two of them: `head + b"," + tail`.
SPLIT = {
    "openai_chat": (b'{"choices":[{"index":0,"delta":{"content":"a"}}', b'{"index":1,"delta":{"content":"b"}}]}'),
    "anthropic_messages": (
        b'{"type":"message_start","message":{"id":"m","content":[{"type":"text","text":"a"}',
        b'{"type":"text","text":"b"}]}}',
    ),
    "openai_responses": (
        b'{"type":"response.completed","response":{"id":"r","status":"completed","output":[{"type":"message"}',
        b'{"type":"message"}]}}',
    ),
    "gemini": (b'{"candidates":[{"index":0,"content":{"parts":[{"text":"a"}]}}', b'{"index":1}]}'),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("line_end", [b"\r", b"\n"], ids=["cr", "lf"])
def test_a_lone_line_end_inside_json_whitespace_ends_the_line_on_both_paths(
    protocol: str, line_end: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data: {"choices":` CR `[…]}`: SSE ends the data line at the CR, so the payload is
    cut (and only the lenient parse, with its warning, reads it); JSON would call the CR
    whitespace."""
    payload = MINIMAL[protocol].replace(b":", b":" + line_end, 1)
    rec = assert_same(protocol, b"data: " + payload + b"\n\n", None, monkeypatch)
    assert "lenient_sse" in codes(rec)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_lone_cr_in_a_crlf_body_ends_the_line_on_both_paths(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = MINIMAL[protocol].replace(b":", b":\r", 1)
    rec = assert_same(protocol, b"data: " + payload + b"\r\n\r\n", None, monkeypatch)
    assert "lenient_sse" in codes(rec)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("comma", [True, False], ids=["comma", "no-comma"])
def test_a_json_value_split_across_two_events_is_two_bad_events_on_both_paths(
    protocol: str, comma: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data: {"a":[{},` and `data: {}]}` as two events: each payload is cut, though the
    two lines joined would be one JSON value (`{"a":[{}` and `{}]}` without the comma too,
    for a reader that joins lines with a comma)."""
    head, tail = SPLIT[protocol]
    body = b"data: " + head + (b"," if comma else b"") + b"\n\ndata: " + tail + b"\n\n"
    rec = assert_same(protocol, body, None, monkeypatch)
    assert rec["chunks"] == [] and codes(rec).count("bad_chunk") == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("glue", [b" ", b""], ids=["space", "adjacent"])
def test_two_json_values_on_one_data_line_are_one_bad_event_on_both_paths(
    protocol: str, glue: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"data: " + MINIMAL[protocol] + glue + MINIMAL[protocol] + b"\n\n"
    rec = assert_same(protocol, body, None, monkeypatch)
    assert rec["chunks"] == [] and codes(rec).count("bad_chunk") == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_extra_blank_line_does_not_time_the_next_event_by_the_wrong_read(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reads end inside a run of three LFs: the second event arrived after the last
    recorded read, so it has no arrival time."""
    first = b"data: " + MINIMAL[protocol] + b"\n\n"
    body = first + b"\ndata: " + MINIMAL[protocol] + b"\n\n"
    rec = assert_same(protocol, body, [(5.0, len(first)), (9.0, len(first) + 1)], monkeypatch)
    assert [chunk[1] for chunk in rec["chunks"]] == [("float", 5.0), None]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_event_ended_by_a_crlf_blank_line_arrives_with_that_blank_line(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`…}` CR LF CR LF LF: the event is complete at the second CR (a lone CR ends a line),
    which the first read brought; the LF after it came later."""
    body = b"data: " + MINIMAL[protocol] + b"\r\n\r\n\n"
    rec = assert_same(protocol, body, [(5.0, len(body) - 2), (9.0, len(body))], monkeypatch)
    assert [chunk[1] for chunk in rec["chunks"]] == [("float", 5.0)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_invalid_utf8_in_a_json_string_is_read_as_u_fffd_with_a_warning_alike_on_both_paths(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"data: " + MINIMAL[protocol].replace(b'"Hi"', b'"H\xffi"') + b"\n\n"
    rec = assert_same(protocol, body, None, monkeypatch)
    assert "not_utf8" in codes(rec) and "bad_chunk" not in codes(rec)
    assert "H\ufffdi" in repr(rec)  # the event kept, not dropped


BIG = {  # a token count one more than 2**64
    "openai_chat": b'{"choices":[],"usage":{"prompt_tokens":18446744073709551617,"completion_tokens":1,"total_tokens":2}}',
    "anthropic_messages": b'{"type":"message_start","message":{"id":"m","content":[],"usage":{"input_tokens":18446744073709551617,"output_tokens":1}}}',
    "openai_responses": b'{"type":"response.completed","response":{"id":"r","status":"completed","output":[],"usage":{"input_tokens":18446744073709551617,"output_tokens":1,"total_tokens":2}}}',
    "gemini": b'{"candidates":[],"usageMetadata":{"promptTokenCount":18446744073709551617,"totalTokenCount":2}}',
}  # fmt: skip


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_integer_beyond_64_bits_reads_alike_on_both_paths(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(protocol, b"data: " + BIG[protocol] + b"\n\n", None, monkeypatch)


@pytest.mark.parametrize(
    ("protocol", "body"),
    [
        ("anthropic_messages", b'event: message_stop\ndata: {"type":null}\n\n'),
        ("anthropic_messages", b'event: message_stop\ndata: {"type":""}\n\n'),
        (
            "openai_responses",
            b'event: response.completed\ndata: {"type":null,"response":{"id":"r","status":"completed","output":[]}}\n\n',
        ),
        (
            "openai_responses",
            b'event: response.completed\ndata: {"type":"","response":{"id":"r","status":"completed","output":[]}}\n\n',
        ),
    ],
    ids=["anthropic-null", "anthropic-empty", "responses-null", "responses-empty"],
)
def test_an_event_whose_type_is_null_or_empty_is_named_alike_on_both_paths(
    protocol: str, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The general path names an event by its `event:` line when the payload's own `type`
    says nothing; the fast path must give the same."""
    assert_same(protocol, body, None, monkeypatch)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_whitespace_only_payload_reads_alike_on_both_paths(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`data:` and two spaces: the payload is one space."""
    assert_same(protocol, b"data: " + MINIMAL[protocol] + b"\n\ndata:  \n\n", None, monkeypatch)


def test_a_block_started_twice_keeps_the_later_blocks_text_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    start = b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    delta = b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"%s"}}\n\n'
    body = start + delta % b"a" + start + delta % b"b"
    rec = assert_same("anthropic_messages", body, None, monkeypatch)
    assert rec["choices"][0]["content"] == "b"  # the general path: "the later one is kept"


DEEP = b"[" * 1000 + b"]" * 1000  # orjson reads up to 1024 levels


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_payload_nested_1000_deep_is_read_on_both_paths_not_dropped(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compared by warnings only: comparing the payloads would recurse as deep. Past the stack
    for msgspec, within orjson's 1,024 levels: read, in every protocol (it was a `bad_chunk`
    in all but chat/completions)."""
    payload = MINIMAL[protocol][:-1] + b',"usage":{"nested":' + DEEP + b"}}"
    assert orjson.loads(payload)
    body = b"data: " + payload + b"\n\n"
    with monkeypatch.context() as patch:
        patch.setattr(openai_chat, "WHOLE_STREAM", True)
        patch.setattr(events, "WHOLE_STREAM", True)
        fast = [w.code for w in reconstruct_only(protocol, body)]
        patch.setattr(openai_chat, "WHOLE_STREAM", False)
        patch.setattr(events, "WHOLE_STREAM", False)
        general = [w.code for w in reconstruct_only(protocol, body)]
    assert fast == general
    assert "reconstruction_failed" not in general
    assert "bad_chunk" not in general


def reconstruct_only(protocol: str, body: bytes) -> list[Any]:
    """The warnings of a reconstruction, and nothing else."""
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body)
    request = Request(method="POST", url=URLS[protocol], body=None)
    exchange = Exchange(id="x", source="<test>", format="sse-text", request=request, response=response)
    return exchange.reconstruct().warnings


def odd_shapes(payload: bytes) -> dict[str, bytes]:
    """Bodies around one payload in shapes other than the plain one: most the fast paths
    must decline, some (two spaces after `data:`, an odd event name) they may take."""
    cut = payload.index(b":") + 1
    return {
        "comment-first": b": keep-alive\n\ndata: " + payload + b"\n\n",
        "comment-inside": b"data: " + payload + b"\n: keep-alive\n\n",
        "id-line": b"id: 7\ndata: " + payload + b"\n\n",
        "retry-line": b"data: " + payload + b"\nretry: 3000\n\n",
        "event-after-data": b"data: " + payload + b"\nevent: message_stop\n\n",
        "data-without-space": b"data:" + payload + b"\n\n",
        "data-with-two-spaces": b"data:  " + payload + b"\n\n",
        "second-data-line": b"data: " + payload[:cut] + b"\ndata: " + payload[cut:] + b"\n\n",
        "empty-event": b"data: " + payload + b"\n\ndata:\n\ndata: " + payload + b"\n\n",
        "extra-blank-line": b"data: " + payload + b"\n\n\ndata: " + payload + b"\n\n",
        "no-final-blank-line": b"data: " + payload + b"\n",
        "no-final-line-end": b"data: " + payload,
        "bom": b"\xef\xbb\xbfdata: " + payload + b"\n\n",
        "nul-after-value": b"data: " + payload + b"\x00\n\n",
        "done-between": b"data: " + payload + b"\n\ndata: [DONE]\n\ndata: " + payload + b"\n\n",
        "whitespace-only-line": b"data: " + payload + b"\n \n\n",
        "array": b"data: [" + payload + b"]\n\n",
        "string": b'data: "Hi"\n\n',
        "number": b"data: 42\n\n",
        "odd-event-name": b'event: a"b\\c\ndata: ' + payload + b"\n\n",
        "cr-line-ends": b"data: " + payload + b"\r\r",
        "mixed-line-ends": b"data: " + payload + b"\r\n\r\ndata: " + payload + b"\n\n",
    }


CASES = [(protocol, name) for protocol in PROTOCOLS for name in odd_shapes(MINIMAL[protocol])]


@pytest.mark.parametrize(("protocol", "case"), CASES, ids=[f"{p}-{c}" for p, c in CASES])
def test_other_shapes_read_alike_on_both_paths(protocol: str, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = odd_shapes(MINIMAL[protocol])[case]
    assert_same(protocol, body, None, monkeypatch)
    assert_same(protocol, body, every(body, 3), monkeypatch)


# Anthropic's typed events with values of any JSON type where the types say `dict[str, Any]`
# (the message, a block, message_delta's delta and usage): the typed decode takes them, and its
# fold steps, which run without a per-event guard, must read them as the general path does.
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-2, 3)
    | st.floats(-1, 1)
    | st.text(max_size=4)
    | st.sampled_from(["text", "thinking", "tool_use", "fallback", "end_turn", "redacted_thinking"])
)
ANY_JSON = SCALAR | st.recursive(  # scalars as often as containers, which recursive alone favours
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["type", "text", "thinking", "model", "input_tokens"]), inner, max_size=3)
    ),
    max_leaves=10,
)


def object_of_any(*keys: str) -> st.SearchStrategy[dict[str, Any]]:
    """An object with some of `keys` (the ones a fold reads there), each of any type."""
    return st.dictionaries(st.sampled_from(keys), ANY_JSON, max_size=len(keys))


MESSAGE = object_of_any("id", "type", "role", "model", "content", "usage", "stop_reason", "context_management")
BLOCK = object_of_any("type", "text", "thinking", "id", "name", "input", "to", "citations", "signature")
MESSAGE_DELTA = object_of_any("stop_reason", "stop_sequence", "stop_details", "container", "usage")
USAGE = object_of_any("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
INDEX = st.integers(0, 2)
DELTAS = [("text_delta", "text"), ("thinking_delta", "thinking"), ("input_json_delta", "partial_json"),
          ("signature_delta", "signature")]  # fmt: skip
TYPED_ANTHROPIC = st.one_of(
    st.builds(lambda m: {"type": "message_start", "message": m}, MESSAGE),
    st.builds(lambda i, b: {"type": "content_block_start", "index": i, "content_block": b}, INDEX, BLOCK),
    st.builds(
        lambda i, kind, text: {"type": "content_block_delta", "index": i, "delta": {"type": kind[0], kind[1]: text}},
        INDEX,
        st.sampled_from(DELTAS),
        st.sampled_from(["", "a", '{"k": ', "1}", "é"]),
    ),
    st.builds(lambda i: {"type": "content_block_stop", "index": i}, INDEX),
    st.builds(lambda d, u: {"type": "message_delta", "delta": d, "usage": u}, MESSAGE_DELTA, st.none() | USAGE),
    st.just({"type": "message_stop"}),
    st.just({"type": "ping"}),
)


@FUZZ
@given(events=st.lists(TYPED_ANTHROPIC, min_size=1, max_size=9), named=st.booleans())
def test_anthropic_typed_events_holding_values_of_any_type_read_alike_on_both_paths(
    events: list[dict[str, Any]], named: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = sse(events, named, b"\n")
    exchange = Exchange(
        id="x", source="<test>", format="sse-text", request=None, response=Response(status=200, body=body)
    )
    rec = Reconstruction(protocol="anthropic_messages", streamed=True)
    assert anthropic._typed_events(exchange, rec) is not None  # the typed path is the one under test
    assert_same("anthropic_messages", body, None, monkeypatch)
