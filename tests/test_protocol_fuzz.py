"""No event stream, however malformed, makes a reconstruction raise: every protocol's fold
meets payloads with the right keys and the wrong types (a delta that is a list, an index
that is a string, parts that are numbers) and turns them into warnings, never an exception.

Generated with hypothesis from each protocol's event names and field names.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.model import Exchange, Reconstruction, Request, Response

URLS = {
    "anthropic_messages": "https://api.anthropic.com/v1/messages",
    "openai_responses": "https://api.openai.com/v1/responses",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse",
    "openai_chat": "https://api.openai.com/v1/chat/completions",
}
TYPES = {
    "anthropic_messages": [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
        "message_stop", "ping", "error", "text_delta", "thinking_delta", "input_json_delta", "signature_delta",
        "citations_delta", "tool_use", "text", "thinking", "fallback",
    ],
    "openai_responses": [
        "response.created", "response.output_item.added", "response.output_item.done",
        "response.content_part.added", "response.output_text.delta", "response.output_text.done",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_part.added",
        "response.function_call_arguments.delta", "response.refusal.delta", "response.completed",
        "response.incomplete", "response.failed", "error", "message", "function_call", "reasoning",
        "output_text", "custom_tool_call",
    ],
    "gemini": [],
    "openai_chat": ["function"],
}  # fmt: skip
KEYS = [
    "type", "index", "delta", "message", "content", "content_block", "usage", "text", "thinking", "partial_json",
    "signature", "citation", "error", "stop_reason", "output_index", "content_index", "summary_index", "item",
    "part", "response", "output", "status", "arguments", "call_id", "name", "summary", "candidates", "parts",
    "thought", "functionCall", "args", "partialArgs", "jsonPath", "stringValue", "willContinue", "finishReason",
    "usageMetadata", "thoughtSignature", "choices", "tool_calls", "function", "role", "id", "model",
]  # fmt: skip


def payloads(protocol: str) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6), st.sampled_from(TYPES[protocol] or ["x"]),
    )  # fmt: skip
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
        max_leaves=12,
    )
    event = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
    if TYPES[protocol]:
        event = st.builds(lambda kind, rest: {"type": kind, **rest}, st.sampled_from(TYPES[protocol]), event)
    return st.one_of(event, values)


def body(events: list[Any], named: bool, crlf: bool) -> bytes:
    newline = b"\r\n" if crlf else b"\n"
    out = b""
    for event in events:
        if named and isinstance(event, dict) and isinstance(event.get("type"), str):
            out += b"event: " + event["type"].encode() + newline
        out += b"data: " + orjson.dumps(event) + newline + newline
    return out


def reconstructs(protocol: str, data: bytes, reads: list[tuple[float, int]] | None) -> Reconstruction:
    exchange = Exchange(
        id="fuzz",
        source="<fuzz>",
        format="test",
        request=Request(method="POST", url=URLS[protocol], body=b'{"model": "m"}'),
        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=data, chunks=reads),
    )
    rec = exchange.reconstruct()  # must not raise
    assert not rec.has("reconstruction_failed"), [str(w) for w in rec.warnings]  # the safety net is for bugs
    rec.to_openai()
    rec.to_native()
    assert all(notice.message for notice in rec.warnings)
    return rec


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    protocol=st.sampled_from(sorted(URLS)),
    events=st.data(),
    named=st.booleans(),
    crlf=st.booleans(),
    cut=st.integers(0, 10_000),
)
def test_malformed_events_never_make_a_reconstruction_raise(
    protocol: str, events: st.DataObject, named: bool, crlf: bool, cut: int
) -> None:
    drawn = events.draw(st.lists(payloads(protocol), min_size=1, max_size=8))
    data = body(drawn, named, crlf)
    reconstructs(protocol, data, None)
    reconstructs(protocol, data[: cut % (len(data) + 1)], [(5.0, cut % (len(data) + 1))])


def test_a_bug_in_a_protocol_is_one_exchanges_warning_not_an_exception(monkeypatch: object) -> None:
    from analyzer.protocols import anthropic

    def broken(exchange: Exchange, rec: object) -> object:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(anthropic, "reconstruct_stream", broken)  # type: ignore[attr-defined]
    data = body([{"type": "message_start", "message": {"id": "m"}}], named=True, crlf=False)
    exchange = Exchange(
        id="bug", source="<test>", format="test",
        request=Request(method="POST", url=URLS["anthropic_messages"]),
        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=data),
    )  # fmt: skip
    rec = exchange.reconstruct()
    assert rec.has("reconstruction_failed") and "simulated bug" in rec.warnings[-1].message
    assert exchange.response.body == data and rec.protocol == "anthropic_messages"


def test_an_event_named_only_by_its_event_line_keeps_the_name() -> None:
    """Some proxies drop `type` from the payload and keep only SSE's `event:` line."""
    events = [
        ("message_start", {"message": {"id": "msg_1", "role": "assistant", "model": "m", "content": []}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("message_stop", {}),
    ]
    data = b"".join(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(p) + b"\n\n" for name, p in events)
    exchange = Exchange(
        id="named", source="<test>", format="test",
        request=Request(method="POST", url=URLS["anthropic_messages"]),
        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=data),
    )  # fmt: skip
    rec = exchange.reconstruct()
    assert rec.choices[0].content == "Hi" and rec.done and not rec.warnings


def test_odd_values_inside_the_typed_fast_path_are_warnings() -> None:
    """Every event is a common one (so Anthropic decodes them typed), but the message and a
    block carry values of unexpected types."""
    events = [
        {"type": "message_start", "message": {"id": "m", "content": 5, "usage": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": ["text"], "text": 7}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": None},
        {"type": "message_stop"},
    ]
    rec = reconstructs("anthropic_messages", body(events, named=True, crlf=False), None)
    assert rec.choices[0].content == "Hi"  # the block's deltas say what it is: its text is kept
    assert any("is no name: read as text" in str(w) for w in rec.warnings)


def test_odd_values_in_a_gemini_part_and_a_final_response_are_warnings() -> None:
    gemini = [
        {"candidates": [{"content": {"parts": [{"text": 7, "thought": True}, {"text": ["x"]}, {"text": "ok"}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": 3, "args": "x"}}]}, "finishReason": 5}]},
    ]
    rec = reconstructs("gemini", body(gemini, named=False, crlf=True), None)
    assert "ok" in (rec.choices[0].content or "")
    assert [call.name for call in rec.choices[0].tool_calls] == ["3"]  # a name that is a number, kept as text
    assert any("functionCall name 3 is a int" in str(w) for w in rec.warnings)
    responses = [
        {"type": "response.created", "response": {"id": "r", "output": []}},
        {"type": "response.completed", "response": {"id": "r", "status": "completed", "usage": [], "output": [
            {"type": "message", "content": [{"type": "output_text", "text": 7, "annotations": 3}]},
            {"type": "reasoning", "summary": [{"text": None}], "content": 4},
            {"type": "function_call", "call_id": 1, "name": None, "arguments": {"a": 1}},
        ]}},
    ]  # fmt: skip
    rec = reconstructs("openai_responses", body(responses, named=True, crlf=False), None)
    assert [call.arguments for call in rec.choices[0].tool_calls] == ['{"a":1}']  # JSON, not Python's repr
    assert any("arguments given as a dict" in str(w) for w in rec.warnings)


def test_responses_outputs_too_deep_to_compare_are_left_to_the_texts() -> None:
    """The terminal response's output is compared with the folded one in C before their
    texts are; values nested past Python's recursion limit must make that say "not known
    equal" (the texts then decide), not raise. (Decodable payloads stop short of it: this
    holds the comparison itself to its word.)"""
    from analyzer.protocols.openai_responses import _same_output

    deep: list[Any] = []
    other: list[Any] = []
    for _ in range(5000):
        deep, other = [deep], [other]
    assert _same_output({"output": [1]}, {"output": [1]}) and not _same_output({"output": [1]}, {"output": [2]})
    assert _same_output({"output": deep}, {"output": other}) is False


def test_a_byte_that_is_not_utf8_in_gemini_usage_is_a_warning_with_the_text_kept() -> None:
    """Gemini's fast path keeps usageMetadata raw, unchecked: a byte there that is not UTF-8
    sends the stream to the general decoder, which reads it as U+FFFD and keeps the event."""
    data = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi there"}]},"finishReason":"STOP",'
            b'"index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3,'
            b'"note":"caf\xe9"}}\r\n\r\n')  # fmt: skip
    rec = reconstructs("gemini", data, None)
    assert rec.choices[0].content == "Hi there" and rec.usage is not None and rec.usage.total_tokens == 3
    assert [w.message for w in rec.warnings] == ["event 1: bytes that are not UTF-8, read as U+FFFD"]
